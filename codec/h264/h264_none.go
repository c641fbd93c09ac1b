//go:build !linux || !cgo || noopenh264

package h264

import (
	"image"

	"github.com/deskcast/deskcast/media"
)

// EncoderName says which H.264 encoder this build uses: none.
const EncoderName = "none"

// Available reports why this build cannot encode H.264.
func Available() error { return ErrUnavailable }

type session struct{}

func newSession(Options) (*session, error) { return nil, ErrUnavailable }

func (s *session) encode(*media.Picture, bool) (accessUnit, error) {
	return accessUnit{}, ErrUnavailable
}

func (s *session) setBitrate(int) error { return ErrUnavailable }

func (s *session) close() {}

func convert(*media.Picture, []byte) error { return ErrUnavailable }

// Decoder would decode H.264; this build has no decoder.
type Decoder struct{}

// NewDecoder returns ErrUnavailable: this build has no OpenH264.
func NewDecoder() (*Decoder, error) { return nil, ErrUnavailable }

// Decode returns ErrUnavailable.
func (d *Decoder) Decode([]byte) (*image.YCbCr, error) { return nil, ErrUnavailable }

// Close does nothing.
func (d *Decoder) Close() error { return nil }
