package capture

import (
	"context"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// runPointer runs a pointer source for cfg until the test ends, its pointers on the channel.
func runPointer(t *testing.T, cfg PointerConfig) <-chan *media.Pointer {
	t.Helper()
	p, err := NewPointer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *media.Pointer, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, func(ptr *media.Pointer) { ch <- ptr }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ch
}

// waitPointer returns the first pointer from ch that ok accepts, failing after 2 s.
func waitPointer(t *testing.T, ch <-chan *media.Pointer, what string, ok func(*media.Pointer) bool) *media.Pointer {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case p := <-ch:
			if ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no pointer %s within 2 s", what)
			return nil
		}
	}
}

// at says whether p points at screen pixel pt of the shared rectangle r.
func at(r image.Rectangle, pt image.Point) func(*media.Pointer) bool {
	return func(p *media.Pointer) bool {
		fx, fy, _ := PointerFraction(r, pt.X, pt.Y)
		return p.Visible && p.X == fx && p.Y == fy
	}
}

func TestPointerX11(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	red := color.RGBA{255, 0, 0, 255}
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphArrow, red); err != nil {
		t.Fatal(err)
	}
	if err := x.Warp(5, 5); err != nil {
		t.Fatal(err)
	}
	screen := image.Rect(0, 0, 640, 480)
	ch := runPointer(t, PointerConfig{})
	first := waitPointer(t, ch, "at 5,5", at(screen, image.Pt(5, 5)))
	if first.Shape == nil || len(first.Shape.PNG) == 0 || first.AreaW != 640 || first.AreaH != 480 {
		t.Fatalf("first pointer %+v", first)
	}
	// The shape is the red arrow: some pixel is opaque red.
	if !hasColour(first.Shape, red) {
		t.Fatal("the arrow's shape has no red pixel")
	}

	t.Run("moves", func(t *testing.T) {
		for _, pt := range []image.Point{{100, 50}, {639, 479}, {320, 240}, {0, 0}} {
			if err := x.Warp(pt.X, pt.Y); err != nil {
				t.Fatal(err)
			}
			waitPointer(t, ch, "at "+pt.String(), at(screen, pt))
		}
	})
	t.Run("still emits nothing", func(t *testing.T) {
		for len(ch) > 0 {
			<-ch
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(ch); n != 0 {
			t.Fatalf("%d pointers emitted while still", n)
		}
	})
	t.Run("shape", func(t *testing.T) {
		blue := color.RGBA{0, 0, 255, 255}
		box := image.Rect(400, 300, 500, 400)
		if err := x.SetCursor(box, testenv.GlyphHand, blue); err != nil {
			t.Fatal(err)
		}
		if err := x.Warp(450, 350); err != nil {
			t.Fatal(err)
		}
		p := waitPointer(t, ch, "with the hand", func(p *media.Pointer) bool { return p.Shape != nil && p.Shape.Serial != first.Shape.Serial })
		if !hasColour(p.Shape, blue) || hasColour(p.Shape, red) {
			t.Fatal("the hand's shape is not blue")
		}
		if err := x.Warp(10, 10); err != nil {
			t.Fatal(err)
		}
		waitPointer(t, ch, "the arrow again", func(p *media.Pointer) bool { return p.Shape != nil && hasColour(p.Shape, red) })
	})
}

func TestPointerRegion(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphCrosshair, color.RGBA{0, 0, 0, 255}); err != nil {
		t.Fatal(err)
	}
	if err := x.Warp(5, 5); err != nil {
		t.Fatal(err)
	}
	region := image.Rect(100, 100, 300, 200)
	ch := runPointer(t, PointerConfig{Region: region})
	waitPointer(t, ch, "hidden outside the region", func(p *media.Pointer) bool { return !p.Visible })
	if err := x.Warp(150, 120); err != nil {
		t.Fatal(err)
	}
	p := waitPointer(t, ch, "in the region", at(region, image.Pt(150, 120)))
	if p.X != 50.5/200 || p.Y != 20.5/100 || p.AreaW != 200 || p.AreaH != 100 {
		t.Fatalf("%+v", p)
	}
	if err := x.Warp(300, 150); err != nil {
		t.Fatal(err)
	}
	waitPointer(t, ch, "hidden right of the region", func(p *media.Pointer) bool { return !p.Visible })
}

// hasColour says whether s has an opaque pixel of colour c.
func hasColour(s *media.PointerShape, c color.RGBA) bool {
	for i := 0; i+3 < len(s.RGBA); i += 4 {
		if s.RGBA[i] == c.R && s.RGBA[i+1] == c.G && s.RGBA[i+2] == c.B && s.RGBA[i+3] == 255 {
			return true
		}
	}
	return false
}

// TestPointerBlank: the test X servers start with a blank cursor, which
// counts as a hidden pointer, wherever it is.
func TestPointerBlank(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	if err := x.Warp(100, 100); err != nil {
		t.Fatal(err)
	}
	ch := runPointer(t, PointerConfig{})
	p := waitPointer(t, ch, "hidden", func(p *media.Pointer) bool { return true })
	if p.Visible || p.Shape != nil {
		t.Fatalf("a blank cursor reported as %+v", p)
	}
}

// TestPointerWithoutEvents: where XFixes numbers its events otherwise than on
// the first X server the process used, the shape is polled: a change still shows.
func TestPointerWithoutEvents(t *testing.T) {
	testenv.StartX(t, 320, 240) // the first server: the process's event numbers
	x := testenv.StartXWithout(t, 320, 240, "DAMAGE")
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphArrow, color.RGBA{255, 0, 0, 255}); err != nil {
		t.Fatal(err)
	}
	ch := runPointer(t, PointerConfig{})
	first := waitPointer(t, ch, "visible", func(p *media.Pointer) bool { return p.Visible })
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphHand, color.RGBA{0, 0, 255, 255}); err != nil {
		t.Fatal(err)
	}
	waitPointer(t, ch, "with the new shape", func(p *media.Pointer) bool { return p.Shape != nil && p.Shape.Serial != first.Shape.Serial })
	for len(ch) > 0 {
		<-ch
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(ch); n != 0 {
		t.Fatalf("%d pointers emitted for a still pointer with a polled shape", n)
	}
}
