package vp8_test

import (
	"testing"

	"github.com/deskcast/deskcast/codec/vp8"
	"github.com/deskcast/deskcast/internal/testenv"
)

// needVPX skips a test in a build without libvpx, where the fallback test
// checks the error instead.
func needVPX(tb testing.TB) {
	tb.Helper()
	if err := vp8.Available(); err != nil {
		tb.Skip(err)
	}
}

// scroll is a desktop taller than the screen, shown through a window that
// moves down step rows a frame: a full-screen scroll, the busiest common case.

// The test sequences are testenv's, shared with the other video encoders.
type source = testenv.PictureSource

var (
	newScroll = testenv.NewScroll
	newMoving = testenv.NewMoving
	newSlides = testenv.NewSlides
	desktop   = testenv.DesktopPicture
	lumaPSNR  = testenv.LumaPSNR
)
