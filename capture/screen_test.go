package capture

import (
	"context"
	"errors"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

var (
	red   = color.RGBA{220, 30, 30, 255}
	green = color.RGBA{30, 200, 60, 255}
	blue  = color.RGBA{30, 60, 220, 255}
	white = color.RGBA{255, 255, 255, 255}
)

// near reports whether two colours are within a few steps of each other
// (scaling blends neighbours).
func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) int { return abs(int(x>>8) - int(y>>8)) }
	return d(r1, r2) < 24 && d(g1, g2) < 24 && d(b1, b2) < 24
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// toImage copies p into an image, so that it can be checked after release.
func toImage(p *media.Picture) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	for y := range p.Height {
		src := p.Pix[y*p.Stride : y*p.Stride+p.Width*4]
		dst := img.Pix[y*img.Stride:]
		for i := 0; i < len(src); i += 4 {
			if p.Format == media.BGRX {
				dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i+2], src[i+1], src[i], 255
			} else {
				dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i], src[i+1], src[i+2], 255
			}
		}
	}
	return img
}

// frame is what frames hands to its check: a picture's image and metadata.
type frame struct {
	Width, Height int
	Captured      time.Time
	Grab          time.Duration
}

// frames runs a Screen and hands each picture to check until it returns true.
func frames(t *testing.T, cfg ScreenConfig, check func(img image.Image, f frame) bool) {
	t.Helper()
	s, err := NewScreen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type got struct {
		img *image.RGBA
		f   frame
	}
	ch := make(chan got, 64)
	errc := make(chan error, 1)
	go func() {
		errc <- s.Run(ctx, func(p *media.Picture) {
			ch <- got{toImage(p), frame{p.Width, p.Height, p.Captured, p.Grab}}
			p.Release()
		})
	}()
	for {
		select {
		case g := <-ch:
			if g.f.Captured.IsZero() || g.f.Grab <= 0 {
				t.Fatalf("picture captured at %v in %v", g.f.Captured, g.f.Grab)
			}
			if check(g.img, g.f) {
				cancel()
				if err := <-errc; err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
		case err := <-errc:
			t.Fatalf("Run ended early: %v", err)
		case <-ctx.Done():
			t.Fatal("no matching picture within 10 s")
		}
	}
}

func TestScreenOnXvfb(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	// Four quadrants of known colours, so both colour and geometry show.
	paint := func() {
		x.FillRect(image.Rect(0, 0, 320, 240), red)
		x.FillRect(image.Rect(320, 0, 640, 240), green)
		x.FillRect(image.Rect(0, 240, 320, 480), blue)
		x.FillRect(image.Rect(320, 240, 640, 480), white)
	}
	paint()

	tests := []struct {
		name   string
		cfg    ScreenConfig
		w, h   int
		points map[image.Point]color.RGBA // in frame coordinates
	}{
		{"whole screen", ScreenConfig{FPS: 30}, 640, 480, map[image.Point]color.RGBA{
			{160, 120}: red, {480, 120}: green, {160, 360}: blue, {480, 360}: white,
		}},
		{"region", ScreenConfig{FPS: 30, Region: image.Rect(300, 200, 400, 300)}, 100, 100, map[image.Point]color.RGBA{
			{5, 5}: red, {95, 5}: green, {5, 95}: blue, {95, 95}: white,
		}},
		{"downscaled", ScreenConfig{FPS: 30, MaxWidth: 320}, 320, 240, map[image.Point]color.RGBA{
			{80, 60}: red, {240, 60}: green, {80, 180}: blue, {240, 180}: white,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames(t, tc.cfg, func(img image.Image, f frame) bool {
				if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h || f.Width != tc.w || f.Height != tc.h {
					t.Fatalf("frame is %v (says %dx%d), want %dx%d", b, f.Width, f.Height, tc.w, tc.h)
				}
				for p, want := range tc.points {
					if got := img.At(p.X, p.Y); !near(got, want) {
						t.Fatalf("pixel %v = %v, want %v", p, got, want)
					}
				}
				return true
			})
		})
	}

	t.Run("sends only changes", func(t *testing.T) {
		n := 0
		start := time.Now()
		frames(t, ScreenConfig{FPS: 60}, func(img image.Image, f frame) bool {
			n++
			switch n {
			case 1: // the first frame always comes; then a still screen sends nothing
				time.Sleep(300 * time.Millisecond)
				x.FillRect(image.Rect(0, 0, 320, 240), green)
				return false
			default:
				if !near(img.At(160, 120), green) {
					t.Fatalf("frame %d after %v: pixel = %v, want the change to green", n, time.Since(start), img.At(160, 120))
				}
				return true
			}
		})
		paint()
	})

	t.Run("region outside the monitor", func(t *testing.T) {
		s, _ := NewScreen(ScreenConfig{FPS: 10, Region: image.Rect(600, 0, 700, 100)})
		if err := s.Run(context.Background(), func(p *media.Picture) { p.Release() }); !errors.Is(err, ErrRegion) {
			t.Fatalf("Run with a region past the edge = %v, want ErrRegion", err)
		}
	})
	t.Run("monitor that does not exist", func(t *testing.T) {
		s, _ := NewScreen(ScreenConfig{Monitor: 3, FPS: 10})
		if err := s.Run(context.Background(), func(p *media.Picture) { p.Release() }); !errors.Is(err, ErrNoMonitor) {
			t.Fatalf("Run on monitor 4 = %v, want ErrNoMonitor", err)
		}
	})
	t.Run("monitors", func(t *testing.T) {
		ms, err := Monitors()
		if err != nil || len(ms) != 1 || ms[0].Bounds != image.Rect(0, 0, 640, 480) || ms[0].String() != "1: 640×480 (primary)" {
			t.Fatalf("Monitors() = %v, %v", ms, err)
		}
	})
}
