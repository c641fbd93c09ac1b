//go:build !linux

package capture

import (
	"context"

	"github.com/kbinani/screenshot"
)

func newPlatformGrabber(_ context.Context, cfg ScreenConfig) (grabber, error) {
	return newGenericGrabber(cfg.Monitor, cfg.Region, nil)
}

// Monitors lists the active displays; the first is the main display.
func Monitors() ([]Monitor, error) {
	var ms []Monitor
	for i := range screenshot.NumActiveDisplays() {
		if b := screenshot.GetDisplayBounds(i); !b.Empty() {
			ms = append(ms, Monitor{Index: i, Bounds: b, Primary: i == 0})
		}
	}
	if len(ms) == 0 {
		return nil, errNoDisplay
	}
	return ms, nil
}

// UsesPortal reports whether the screen is captured through a desktop
// portal: only on Linux Wayland sessions.
func UsesPortal() bool { return false }

// Ask does nothing: only Wayland has a portal to ask.
func (p *Portal) Ask(context.Context) error { return nil }
