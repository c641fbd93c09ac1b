package capture

import (
	"image"
	"image/color"
	"os"
	"strings"
	"testing"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// sysvMaps counts the System V shared-memory mappings in our address space.
func sysvMaps(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "/SYSV")
}

// uniform reports whether every pixel of p is c.
func uniform(p *media.Picture, c color.RGBA) bool {
	for y := range p.Height {
		row := p.Pix[y*p.Stride : y*p.Stride+p.Width*4]
		for i := 0; i < len(row); i += 4 {
			if row[i] != c.B || row[i+1] != c.G || row[i+2] != c.R {
				return false
			}
		}
	}
	return true
}

// TestXShmSegments checks the grabber's shared-memory lifecycle: a picture
// keeps its segment however many grabs come after, a released segment is
// grabbed into again, the number held is bounded, and Close leaves a held
// picture readable until its release unmaps it.
func TestXShmSegments(t *testing.T) {
	x := testenv.StartX(t, 64, 48)
	paint := func(c color.RGBA) {
		t.Helper()
		if err := x.FillRect(image.Rect(0, 0, 64, 48), c); err != nil {
			t.Fatal(err)
		}
	}
	base := sysvMaps(t)
	paint(red)
	g, err := newXShmGrabber(0, image.Rectangle{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	grab := func() *media.Picture {
		t.Helper()
		p, err := g.Grab()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	segs := func() (all, free int) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.segs), len(g.free)
	}

	// New's test grab attached one segment and gave it back.
	if all, free := segs(); all != 1 || free != 1 {
		t.Fatalf("after New: %d segments, %d free; want 1, 1", all, free)
	}
	p1 := grab()
	paint(green)
	p2 := grab()
	if !uniform(p1, red) || !uniform(p2, green) {
		t.Fatal("a held picture changed with the next grab")
	}
	if all, free := segs(); all != 2 || free != 0 {
		t.Fatalf("two pictures held: %d segments, %d free; want 2, 0", all, free)
	}

	t.Run("released segment reused", func(t *testing.T) {
		seg1 := &p1.Pix[0]
		p1.Release()
		paint(blue)
		p3 := grab()
		defer p3.Release()
		if &p3.Pix[0] != seg1 {
			t.Fatal("the grab after a release did not reuse the released segment")
		}
		if all, _ := segs(); all != 2 {
			t.Fatalf("%d segments attached, want 2", all)
		}
		if !uniform(p3, blue) || !uniform(p2, green) {
			t.Fatal("pictures do not hold what was on screen when grabbed")
		}
	})

	t.Run("bounded", func(t *testing.T) {
		var held []*media.Picture
		defer func() {
			for _, p := range held {
				p.Release()
			}
		}()
		for {
			p, err := g.Grab()
			if err != nil {
				if all, _ := segs(); all != maxSegs {
					t.Fatalf("Grab failed with %d segments attached, want %d: %v", all, maxSegs, err)
				}
				break
			}
			held = append(held, p)
			if len(held) > maxSegs {
				t.Fatalf("%d pictures held at once, want at most %d", len(held)+1, maxSegs)
			}
		}
	})
	if all, free := segs(); all != maxSegs || free != maxSegs-1 {
		t.Fatalf("everything but p2 released: %d segments, %d free; want %d, %d", all, free, maxSegs, maxSegs-1)
	}

	t.Run("close with a picture held", func(t *testing.T) {
		if n := sysvMaps(t) - base; n != maxSegs {
			t.Fatalf("%d segments mapped, want %d", n, maxSegs)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if n := sysvMaps(t) - base; n != 1 {
			t.Fatalf("after Close, %d segments mapped, want p2's alone", n)
		}
		paint(white)
		if !uniform(p2, green) {
			t.Fatal("a picture held over Close changed")
		}
		if _, err := g.Grab(); err == nil {
			t.Fatal("Grab after Close worked")
		}
		p2.Release()
		if n := sysvMaps(t) - base; n != 0 {
			t.Fatalf("after the last release, %d segments mapped, want none", n)
		}
		if err := g.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
