package capture

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// TestPortalCapture captures a real GNOME Wayland session (mutter, headless,
// with a 1920×1080 virtual monitor) through xdg-desktop-portal and PipeWire:
// a GTK window's colours at full size, a change as the compositor sends it,
// nothing on a still screen, a region, the restore token kept and used, and
// mutter's death reported as an error.
func TestPortalCapture(t *testing.T) {
	wl := testenv.GnomeWayland(t, 1920, 1080)
	win := wl.Window(red)
	if !UsesPortal() {
		t.Fatal("UsesPortal is false on a Wayland session")
	}
	if ms, err := Monitors(); err != nil || len(ms) != 1 || ms[0].String() != "1: "+PortalMonitor {
		t.Fatalf("Monitors on Wayland = %v, %v; want the one the dialog chooses", ms, err)
	}
	p := NewPortal(wl.SeedScreencast(), nil, nil)

	t.Run("colours and changes", func(t *testing.T) {
		r := runScreen(t, ScreenConfig{FPS: 30, Portal: p}, time.Hour, heard, image.Pt(960, 540))
		if e := r.until(t, 10*time.Second, red); e.size != image.Pt(1920, 1080) {
			t.Fatalf("picture is %v, want 1920×1080", e.size)
		}
		if _, ok := r.g.grabber.(*portalGrabber); !ok {
			t.Fatalf("grabber is %T, want the portal's", r.g.grabber)
		}
		// The portal gives a token to keep for the next share (often the same).
		if p.Token() == "" {
			t.Fatal("no restore token kept")
		}
		var lat []time.Duration
		for _, c := range []color.RGBA{blue, green, red, blue} {
			t0 := time.Now()
			win.Paint(c)
			lat = append(lat, r.until(t, 5*time.Second, c).at.Sub(t0))
		}
		t.Logf("change to picture: %v", lat)
		before := r.g.grabs.Load()
		r.quiet(t, 2*time.Second)
		if n := r.g.grabs.Load() - before; n != 0 {
			t.Fatalf("%d grabs of a still screen in 2 s, want none", n)
		}
	})
	// The token saved by the first share starts the next one without the
	// dialog: a Waiting status would mean the dialog was up.
	t.Run("region, with the saved token", func(t *testing.T) {
		if p.Status() != "" {
			t.Fatalf("status %q after a good share, want none", p.Status())
		}
		r := runScreen(t, ScreenConfig{FPS: 30, Portal: p, Region: image.Rect(100, 50, 740, 530)}, time.Hour, heard, image.Pt(10, 10))
		if e := r.until(t, 10*time.Second, blue); e.size != image.Pt(640, 480) {
			t.Fatalf("region picture is %v, want 640×480", e.size)
		}
		if p.Status() != "" {
			t.Fatalf("status %q, want none: the saved token should skip the dialog", p.Status())
		}
	})
	t.Run("region too big", func(t *testing.T) {
		s, err := NewScreen(ScreenConfig{FPS: 30, Portal: p, Region: image.Rect(0, 0, 4000, 100)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background(), func(p *media.Picture) { p.Release() }); !errors.Is(err, ErrRegion) {
			t.Fatalf("Run with a region past the screen = %v, want ErrRegion", err)
		}
	})
	t.Run("monitor 2", func(t *testing.T) {
		s, err := NewScreen(ScreenConfig{FPS: 30, Portal: p, Monitor: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background(), func(p *media.Picture) { p.Release() }); !errors.Is(err, ErrNoMonitor) {
			t.Fatalf("Run on monitor 2 = %v, want ErrNoMonitor", err)
		}
	})
	t.Run("mutter killed", func(t *testing.T) {
		s, err := NewScreen(ScreenConfig{FPS: 30, Portal: p})
		if err != nil {
			t.Fatal(err)
		}
		first := make(chan struct{}, 1)
		errc := make(chan error, 1)
		go func() {
			errc <- s.Run(context.Background(), func(p *media.Picture) {
				p.Release()
				select {
				case first <- struct{}{}:
				default:
				}
			})
		}()
		select {
		case <-first:
		case err := <-errc:
			t.Fatalf("Run: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no picture within 10 s")
		}
		wl.Kill("mutter")
		select {
		case err := <-errc:
			if err == nil {
				t.Fatal("Run returned nil after mutter died, want an error")
			}
			if !strings.HasPrefix(p.Status(), PortalEnded) {
				t.Fatalf("status %q after mutter died, want it to start %q", p.Status(), PortalEnded)
			}
			// Ended is ended: capture does not ask again by itself (that
			// could resume sharing the user stopped) until Rearm.
			s2, _ := NewScreen(ScreenConfig{FPS: 30, Portal: p})
			if err := s2.Run(context.Background(), func(p *media.Picture) { p.Release() }); err == nil ||
				!strings.Contains(err.Error(), "not asking the desktop again") {
				t.Fatalf("Run after the end = %v, want a refusal to ask again", err)
			}
			t.Logf("Run after mutter died: %v; status %q", err, p.Status())
		case <-time.After(10 * time.Second):
			t.Fatal("Run still running 10 s after mutter died")
		}
	})
}

// TestPortalPointer follows the pointer the compositor reports beside the
// frames (the portal's cursor metadata) as mutter's pointer moves, with its
// shape, in fractions of the picture, and of a region; a move alone sends
// no picture.
func TestPortalPointer(t *testing.T) {
	wl := testenv.GnomeWayland(t, 1280, 720)
	wl.Window(red)
	p := NewPortal(wl.SeedScreencast(), nil, nil)
	for _, tc := range []struct {
		name   string
		region image.Rectangle
		at     image.Point // where the pointer is put, in screen pixels
		want   [2]float64  // fractions of the picture
		area   image.Point // AreaW, AreaH
	}{
		{"whole screen", image.Rectangle{}, image.Pt(960, 540), [2]float64{0.75, 0.75}, image.Pt(1280, 720)},
		{"region", image.Rect(640, 360, 1280, 720), image.Pt(960, 540), [2]float64{0.5, 0.5}, image.Pt(640, 360)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runScreen(t, ScreenConfig{FPS: 30, Portal: p, Region: tc.region}, time.Hour, heard, image.Pt(10, 10))
			r.until(t, 10*time.Second, red)
			ptrs := runPointer(t, PointerConfig{Portal: p, Region: tc.region})
			wl.MovePointer(-5000, -5000) // to the top left corner, wherever it was
			wl.MovePointer(float64(tc.at.X), float64(tc.at.Y))
			deadline := time.After(5 * time.Second)
			for {
				select {
				case ptr := <-ptrs:
					if !ptr.Visible || math.Abs(ptr.X-tc.want[0]) > 0.01 || math.Abs(ptr.Y-tc.want[1]) > 0.01 {
						continue
					}
					if ptr.Shape == nil || ptr.Shape.W == 0 || len(ptr.Shape.PNG) == 0 {
						t.Fatalf("pointer at (%.3f, %.3f) without a shape", ptr.X, ptr.Y)
					}
					if got := image.Pt(ptr.AreaW, ptr.AreaH); got != tc.area {
						t.Fatalf("pointer area %v, want %v", got, tc.area)
					}
					// The pointer travels beside the frames: moving it sends no
					// picture. (Headless mutter has no hardware cursor, so it
					// redraws and sends the unchanged frame with each move;
					// Run's compare drops it. With a cursor plane mutter sends
					// the cursor alone.)
					drain(r)
					for i := range 10 {
						wl.MovePointer(float64(10+i), 5)
						time.Sleep(50 * time.Millisecond)
					}
					r.quiet(t, 200*time.Millisecond)
					return
				case <-deadline:
					t.Fatalf("no visible pointer at (%.2f, %.2f) within 5 s", tc.want[0], tc.want[1])
				}
			}
		})
	}
}

// TestPortalLargeScreen: a monitor larger than the grabber's first buffer
// (2560×1440) comes whole from the first frame on.
func TestPortalLargeScreen(t *testing.T) {
	wl := testenv.GnomeWayland(t, 2560, 1440)
	wl.Window(green)
	p := NewPortal(wl.SeedScreencast(), nil, nil)
	r := runScreen(t, ScreenConfig{FPS: 30, Portal: p}, time.Hour, heard, image.Pt(2500, 1400))
	if e := r.until(t, 10*time.Second, green); e.size != image.Pt(2560, 1440) {
		t.Fatalf("picture is %v, want 2560×1440", e.size)
	}
}
