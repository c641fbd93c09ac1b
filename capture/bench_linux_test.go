package capture

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"
	"time"

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

// BenchmarkChangeToPicture1080p measures, at 30 fps on a busy 1080p desktop,
// the time from a change drawn on screen to its picture coming out of Run
// (ms/change): with XDamage, and with the frame-rate ticker Run falls back
// to without it. Each change comes at a random phase of the frame interval,
// after a pause of one or two intervals, which ns/op counts too.
func BenchmarkChangeToPicture1080p(b *testing.B) {
	x := benchScreen(b)
	const fps = 30
	k := 0 // over every run, so that each change is one
	for _, bc := range []struct {
		name string
		n    notices
	}{{"xdamage", heard}, {"ticker", ticked}} {
		b.Run(bc.name, func(b *testing.B) {
			r := runScreen(b, ScreenConfig{FPS: fps}, safetyPoll, bc.n, image.Pt(50, 50))
			r.next(b, 5*time.Second)
			colours := []color.RGBA{red, green, blue}
			var total time.Duration
			for range b.N {
				time.Sleep(time.Second/fps + rand.N(time.Second/fps))
				k++
				c := colours[k%len(colours)]
				t0 := time.Now()
				paint(b, x, image.Rect(0, 0, 100, 100), c)
				total += r.until(b, 5*time.Second, c).at.Sub(t0)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/change")
		})
	}
}
