// Package jpeg is the JPEG encoder: libjpeg-turbo through cgo, or Go's
// image/jpeg where that is not built in.
package jpeg

import (
	"fmt"
	"time"

	"github.com/deskcast/deskcast/media"
)

// ValidateQuality reports a JPEG quality outside 1..100.
func ValidateQuality(quality int) error {
	if quality < 1 || quality > 100 {
		return fmt.Errorf("quality %d: want 1 to 100", quality)
	}
	return nil
}

// Encoder compresses pictures to JPEG at one quality. Like every
// media.Encoder it is used from one goroutine at a time.
type Encoder struct {
	c *compressor
}

var _ media.Encoder = (*Encoder)(nil)

// New returns an encoder for quality (1..100).
func New(quality int) (*Encoder, error) {
	if err := ValidateQuality(quality); err != nil {
		return nil, err
	}
	c, err := newCompressor(quality)
	if err != nil {
		return nil, err
	}
	return &Encoder{c: c}, nil
}

// Encode compresses p into a frame of its own bytes; p is not kept.
func (e *Encoder) Encode(p *media.Picture) (*media.Frame, error) {
	start := time.Now()
	data, err := e.c.compress(p)
	if err != nil {
		return nil, err
	}
	return &media.Frame{
		Codec:    media.JPEG,
		Data:     data,
		Keyframe: true,
		Width:    p.Width,
		Height:   p.Height,
		Captured: p.Captured,
		Grab:     p.Grab,
		Encode:   time.Since(start),
	}, nil
}

// ForceKeyframe does nothing: every JPEG is a keyframe.
func (e *Encoder) ForceKeyframe() {}

// Close frees the encoder's memory. Closing twice is fine.
func (e *Encoder) Close() error {
	e.c.close()
	return nil
}
