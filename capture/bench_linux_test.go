package capture

import (
	"image"
	"testing"

	"github.com/kbinani/screenshot"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// benchScreen starts a 1920×1080 Xvfb showing a busy desktop.
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
		// As Run does: each grab is held until the next has been compared.
		var prev *media.Picture
		for b.Loop() {
			p, err := g.Grab()
			if err != nil {
				b.Fatal(err)
			}
			if prev != nil {
				prev.Release()
			}
			prev = p
		}
		prev.Release()
	})
	b.Run("kbinani-screenshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := screenshot.CaptureRect(image.Rect(0, 0, 1920, 1080)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
