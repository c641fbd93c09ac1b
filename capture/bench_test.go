package capture

import (
	"testing"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// The screen capture's steps on a 1920×1080 busy desktop, one by one (the
// JPEG encoder's are in codec/jpeg).
// Run with `make bench`.

func desktopPixels() *media.Picture {
	img := testenv.Desktop(1920, 1080, 1)
	return media.NewPicture(img.Pix, 1920, 1080, img.Stride, media.RGBA, nil)
}

func BenchmarkSameFrame1080p(b *testing.B) {
	a := desktopPixels()
	c := desktopPixels()
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if !sameFrame(a, c) {
				b.Fatal("frames differ")
			}
		}
	})
	c.Pix[len(c.Pix)/2] ^= 0xff // one pixel in the middle
	b.Run("one-pixel-changed", func(b *testing.B) {
		for b.Loop() {
			if sameFrame(a, c) {
				b.Fatal("frames equal")
			}
		}
	})
}

func BenchmarkScale1080pTo1280(b *testing.B) {
	p := desktopPixels()
	var s scaler
	w, h := scaledSize(1920, 1080, 1280)
	for b.Loop() {
		s.scale(p, w, h).Release()
	}
}
