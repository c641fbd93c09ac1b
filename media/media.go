// Package media defines what flows from capture to viewers: raw pictures,
// encoded frames, sound, and the encoder stage between them.
package media

import (
	"sync/atomic"
	"time"
)

// PixFmt is the byte order of a 4-byte pixel.
type PixFmt int

const (
	// BGRX is X11's usual 24-bit depth ZPixmap layout on little-endian machines.
	BGRX PixFmt = iota
	// RGBA is image.RGBA's layout, as kbinani/screenshot returns it.
	RGBA
)

// Picture is one raw captured image: 4 bytes per pixel, rows Stride bytes
// apart. Nobody writes to a published picture. It is reference counted so that
// the source can reuse its memory (an X shared-memory segment, a scaling
// buffer) once every stage is done with it: whoever receives a picture owns
// one reference and calls Release when done; Retain takes another.
type Picture struct {
	Pix      []byte
	Width    int
	Height   int
	Stride   int
	Format   PixFmt
	Captured time.Time     // when the grab started
	Grab     time.Duration // time to grab (and scale) the pixels

	refs atomic.Int32
	free func() // called once the last reference is released; nil for none
}

// NewPicture returns a picture holding one reference; free, if not nil, runs
// when the last reference is released and may then reuse pix.
func NewPicture(pix []byte, width, height, stride int, format PixFmt, free func()) *Picture {
	p := &Picture{Pix: pix, Width: width, Height: height, Stride: stride, Format: format, free: free}
	p.refs.Store(1)
	return p
}

// Retain takes another reference and returns p.
func (p *Picture) Retain() *Picture {
	p.refs.Add(1)
	return p
}

// Release gives back one reference; after the last one p must not be used.
func (p *Picture) Release() {
	// Only the release that reaches exactly zero frees, so a stray extra
	// Release cannot hand the memory back twice.
	if p.refs.Add(-1) == 0 && p.free != nil {
		p.free()
	}
}

// Codec names an encoding.
type Codec string

// The encodings Deskcast knows.
const (
	JPEG Codec = "jpeg"
	H264 Codec = "h264"
	VP8  Codec = "vp8"
	// Opus is sound: 48 kHz stereo packets of 10 or 20 ms.
	Opus Codec = "opus"
)

// Frame is one encoded picture. Its bytes are shared by every subscriber and
// never changed once published.
type Frame struct {
	Codec    Codec
	Data     []byte
	Keyframe bool // decodable on its own (every JPEG is)
	// Droppable says no later frame depends on this one (an H.264
	// non-reference frame): a viewer on a slow link may be sent the others
	// only, at a lower frame rate, without a gap in what it decodes.
	Droppable bool
	Width     int
	Height    int
	Seq       uint64        // set by the fan-out, 1 for the first frame it publishes
	Captured  time.Time     // when the source started grabbing it
	Grab      time.Duration // time the source spent grabbing (and scaling)
	Encode    time.Duration // time the encoder spent
	// Duration is how much sound an audio frame holds (0 for pictures).
	Duration time.Duration

	// Wire is the frame as its track's wire format sends it (for MJPEG the
	// JPEG followed by the next part's header), built once when the frame is
	// published so each subscriber's send is one write of shared bytes; nil
	// when the format needs nothing beyond Data.
	Wire []byte
}

// Encoder is one encoding stage: raw pictures in, encoded frames out. It is
// used from one goroutine at a time.
type Encoder interface {
	// Encode compresses p. The encoder does not keep p after it returns.
	Encode(p *Picture) (*Frame, error)
	// ForceKeyframe makes the next frame a keyframe (a no-op for codecs
	// whose every frame is one).
	ForceKeyframe()
	Close() error
}

// AudioChunk is a run of interleaved signed 16-bit PCM samples, shared by
// every listener and never changed once published.
type AudioChunk struct {
	PCM      []int16
	Rate     int
	Channels int
	Captured time.Time
	Seq      uint64 // set by the fan-out

	// Wire is PCM as little-endian bytes, built once when published.
	Wire []byte
}
