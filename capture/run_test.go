package capture

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/deskcast/deskcast/media"
)

// fakeGrabber hands out pictures of a uniform value per grab from a pool of
// buffers that it reuses once released, so a picture released too early is
// overwritten by a later grab and a picture never released stays live.
type fakeGrabber struct {
	w, h   int
	values []byte // grab k fills its picture with values[k]; then Grab fails
	next   int

	mu     sync.Mutex
	free   [][]byte
	live   int
	closed bool
}

var errFakeDone = errors.New("fake grabber: no more pictures")

func (g *fakeGrabber) Grab() (*media.Picture, error) {
	if g.next == len(g.values) {
		return nil, errFakeDone
	}
	v := g.values[g.next]
	g.next++
	g.mu.Lock()
	var buf []byte
	if n := len(g.free); n > 0 {
		buf, g.free = g.free[n-1], g.free[:n-1]
	} else {
		buf = make([]byte, g.w*g.h*4)
	}
	g.live++
	g.mu.Unlock()
	for i := range buf {
		buf[i] = v
	}
	return media.NewPicture(buf, g.w, g.h, g.w*4, media.BGRX, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.live--
		g.free = append(g.free, buf)
	}), nil
}

func (g *fakeGrabber) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *fakeGrabber) stats() (live int, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.live, g.closed
}

// TestRunOwnership checks Run's reference counting: it emits the first
// picture and each change, every emitted picture stays intact while its
// receiver holds it (however many grabs later), and once the receiver has
// released everything no grabbed picture is left.
func TestRunOwnership(t *testing.T) {
	values := []byte{1, 1, 1, 2, 3, 3, 3, 3, 4, 4, 5, 6, 6, 6, 6, 6, 6, 7, 7, 8}
	want := slices.Compact(slices.Clone(values))
	for _, tc := range []struct {
		name     string
		maxWidth int
		w, h     int // of the emitted pictures
	}{
		{"full size", 0, 64, 32},
		{"scaled", 32, 32, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &fakeGrabber{w: 64, h: 32, values: values}
			s := &Screen{cfg: ScreenConfig{FPS: 120, MaxWidth: tc.maxWidth},
				open: func(context.Context, ScreenConfig) (grabber, error) { return g, nil }}
			type held struct {
				p *media.Picture
				v byte
			}
			var (
				hold []held
				got  []byte
			)
			check := func(h held) {
				t.Helper()
				if h.p.Width != tc.w || h.p.Height != tc.h {
					t.Fatalf("picture %dx%d, want %dx%d", h.p.Width, h.p.Height, tc.w, tc.h)
				}
				for y := range h.p.Height {
					row := h.p.Pix[y*h.p.Stride : y*h.p.Stride+h.p.Width*4]
					for i := 0; i < len(row); i += 4 {
						if row[i] != h.v {
							t.Fatalf("picture of value %d reads %d at row %d: its memory was reused while held", h.v, row[i], y)
						}
					}
				}
			}
			err := s.Run(context.Background(), func(p *media.Picture) {
				h := held{p, p.Pix[0]}
				got = append(got, h.v)
				check(h)
				// Keep up to three pictures, releasing the oldest; the
				// one just emitted is released at once every other time.
				if len(got)%2 == 0 {
					p.Release()
					return
				}
				hold = append(hold, h)
				if len(hold) > 3 {
					check(hold[0])
					hold[0].p.Release()
					hold = hold[1:]
				}
			})
			if !errors.Is(err, errFakeDone) {
				t.Fatalf("Run = %v, want the grabber's error", err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("emitted values %v, want %v", got, want)
			}
			for _, h := range hold {
				check(h)
				h.p.Release()
			}
			if live, closed := g.stats(); live != 0 || !closed {
				t.Fatalf("after Run and every release: %d grabbed pictures live, closed %v", live, closed)
			}
		})
	}
}

func TestScalerPool(t *testing.T) {
	src := media.NewPicture(make([]byte, 64*32*4), 64, 32, 64*4, media.BGRX, nil)
	var s scaler
	a := s.scale(src, 32, 16)
	b := s.scale(src, 32, 16)
	if &a.Pix[0] == &b.Pix[0] {
		t.Fatal("two held scaled pictures share a buffer")
	}
	pa := &a.Pix[0]
	a.Release()
	c := s.scale(src, 32, 16)
	if &c.Pix[0] != pa {
		t.Fatal("a released buffer was not reused")
	}
	b.Release()
	c.Release()
	// A new size starts a new pool; a picture of the old size released
	// afterwards goes back to the old one and is not handed out again.
	d := s.scale(src, 32, 16)
	e := s.scale(src, 16, 8)
	d.Release()
	if f := s.scale(src, 16, 8); len(f.Pix) != 16*8*4 {
		t.Fatalf("scaled to 16x8 into %d bytes", len(f.Pix))
	}
	e.Release()
}
