//go:build !linux || !cgo

package pipewire

import "context"

// Stream is one screen-cast stream; this build has none.
type Stream struct{}

// Load reports that this build cannot read PipeWire streams.
func Load() error { return ErrUnavailable }

// Open fails: this build has no PipeWire.
func Open(fd int, node uint32, maxFPS int) (*Stream, error) { return nil, ErrUnavailable }

// Changes returns nil.
func (*Stream) Changes() <-chan struct{} { return nil }

// State reports ErrUnavailable.
func (*Stream) State() (bool, error) { return false, ErrUnavailable }

// Copy copies nothing.
func (*Stream) Copy(uint64, []byte) (Frame, bool, error) { return Frame{}, false, ErrUnavailable }

// Cursor returns nothing.
func (*Stream) Cursor(uint64, []byte) Cursor { return Cursor{} }

// Close does nothing.
func (*Stream) Close() error { return nil }

// Wait reports ErrUnavailable.
func (*Stream) Wait(context.Context) error { return ErrUnavailable }
