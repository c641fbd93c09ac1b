//go:build !linux || !cgo || novpx

package vp8

import (
	"image"

	"github.com/deskcast/deskcast/media"
)

// Available reports why this build cannot encode VP8.
func Available() error { return ErrUnavailable }

type session struct{}

func newSession(Options) (*session, error) { return nil, ErrUnavailable }

func (s *session) encode(*media.Picture, bool) (coded, error) { return coded{}, ErrUnavailable }

func (s *session) setBitrate(int) error { return ErrUnavailable }

func (s *session) close() {}

// Decoder would decode VP8; this build has no decoder.
type Decoder struct{}

// NewDecoder returns ErrUnavailable: this build has no libvpx.
func NewDecoder() (*Decoder, error) { return nil, ErrUnavailable }

// Decode returns ErrUnavailable.
func (d *Decoder) Decode([]byte) (*image.YCbCr, error) { return nil, ErrUnavailable }

// Close does nothing.
func (d *Decoder) Close() error { return nil }
