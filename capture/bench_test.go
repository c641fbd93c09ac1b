package capture

import (
	"image"
	"strconv"
	"testing"

	"github.com/kbinani/screenshot"

	"github.com/deskcast/deskcast/internal/testenv"
)

// The capture pipeline's steps on a 1920×1080 busy desktop, one by one.
// Run with `make bench`.

func benchScreen(b *testing.B) *testenv.X {
	x := testenv.StartX(b, 1920, 1080)
	if err := x.Put(testenv.Desktop(1920, 1080, 1)); err != nil {
		b.Fatal(err)
	}
	return x
}

func BenchmarkGrab1080p(b *testing.B) {
	benchScreen(b)
	b.Run("xshm-persistent", func(b *testing.B) {
		g, err := newXShmGrabber(0, image.Rectangle{})
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		for b.Loop() {
			if _, err := g.Grab(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kbinani-screenshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := screenshot.CaptureRect(image.Rect(0, 0, 1920, 1080)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func desktopPixels() Pixels {
	img := testenv.Desktop(1920, 1080, 1)
	return Pixels{Pix: img.Pix, Width: 1920, Height: 1080, Stride: img.Stride, Format: RGBA}
}

func BenchmarkEncode1080p(b *testing.B) {
	p := desktopPixels()
	for _, q := range []int{50, 70, 90} {
		b.Run(JPEGEncoderName+"-q"+strconv.Itoa(q), func(b *testing.B) {
			enc, err := newEncoder(q)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var n int
			for b.Loop() {
				jpg, err := enc.Encode(p)
				if err != nil {
					b.Fatal(err)
				}
				n = len(jpg)
			}
			b.ReportMetric(float64(n)/1024, "KB/frame")
		})
	}
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
		s.scale(p, w, h)
	}
}
