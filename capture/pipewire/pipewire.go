// Package pipewire receives the frames of a screen-cast stream from PipeWire
// (the portal's remote), with libpipewire loaded at run time.
package pipewire

import "errors"

// ErrUnavailable means this build or machine cannot read PipeWire streams.
var ErrUnavailable = errors.New("PipeWire screen capture is not available")

// Frame is the layout of a copied frame: Width×Height pixels of 4 bytes,
// rows Width*4 bytes apart.
type Frame struct {
	Width, Height int
	RGB           bool   // RGBx/RGBA byte order; false for BGRx/BGRA
	Seq           uint64 // frames received so far
}

// Cursor is the pointer as the compositor reports it beside the frames.
type Cursor struct {
	Visible    bool
	X, Y       int // the hotspot's position in stream pixels
	HotX, HotY int
	W, H       int    // bitmap size; 0 until one came
	Serial     uint64 // changes whenever the bitmap does
	Seq        uint64 // changes whenever anything here does
}
