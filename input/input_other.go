//go:build !linux && !windows && !darwin

package input

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// inputSys exists only to satisfy Injector; openInputSys never returns one.
type inputSys struct{}

func controlAvailable() error {
	return fmt.Errorf("%w: not supported on %s", ErrUnavailable, runtime.GOOS)
}

func openInputSys(context.Context) (*inputSys, error) { return nil, controlAvailable() }

var errNoInput = errors.New("no input injection on this platform")

func (s *inputSys) move(x, y int) error                   { return errNoInput }
func (s *inputSys) button(b MouseButton, down bool) error { return errNoInput }
func (s *inputSys) scroll(dx, dy int) error               { return errNoInput }
func (s *inputSys) key(c keyCode, down bool) error        { return errNoInput }
func (s *inputSys) typeText(text string) error            { return errNoInput }
func (s *inputSys) close() error                          { return nil }
