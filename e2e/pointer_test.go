package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// The pointer tests' colours: a dark desktop, a red arrow and a green hand,
// each glyph outlined in white, so that no other pixel is taken for them.
var (
	desk      = color.RGBA{40, 40, 40, 255}
	arrowRed  = color.RGBA{255, 0, 0, 255}
	handGreen = color.RGBA{0, 255, 0, 255}
)

func reddish(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	r, g, b = r>>8, g>>8, b>>8
	return r > 120 && r > g+60 && r > b+60
}

func greenish(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	r, g, b = r>>8, g>>8, b>>8
	return g > 120 && g > r+60 && g > b+60
}

// nearest is the distance from pt to the nearest pixel that is, within r
// pixels (r+1 when none is).
func nearest(img image.Image, pt image.Point, r int, is func(color.Color) bool) float64 {
	best := float64(r + 1)
	for y := pt.Y - r; y <= pt.Y+r; y++ {
		for x := pt.X - r; x <= pt.X+r; x++ {
			if !(image.Point{x, y}.In(img.Bounds())) || !is(img.At(x, y)) {
				continue
			}
			best = min(best, math.Hypot(float64(x-pt.X), float64(y-pt.Y)))
		}
	}
	return best
}

// pointerX is a test X server showing the desktop colour, with the red
// arrow as the root window's cursor, the pointer at (100, 100).
func pointerX(t *testing.T, w, h int) *testenv.X {
	t.Helper()
	x := testenv.StartX(t, w, h)
	if err := x.Fill(desk); err != nil {
		t.Fatal(err)
	}
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphArrow, arrowRed); err != nil {
		t.Fatal(err)
	}
	if err := x.Warp(100, 100); err != nil {
		t.Fatal(err)
	}
	return x
}

// hotspotSlack is how far (in page or frame pixels) the nearest pixel of
// the glyph may be from where its hotspot should be: the cursor font's
// arrow has a white outline pixel or two at its tip.
const hotspotSlack = 5

// waitShown takes screenshots until the glyph (is) shows at pt, within
// hotspotSlack, and not at old (if not nil), within 20 pixels.
func waitShown(t *testing.T, ctx context.Context, pt image.Point, old *image.Point, is func(color.Color) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var d, dOld float64
	for time.Since(start) < 5*time.Second {
		img, err := testenv.Screenshot(ctx)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		d, dOld = nearest(img, pt, 20, is), 99
		if old != nil {
			dOld = nearest(img, *old, 20, is)
		}
		if d <= hotspotSlack && dOld > 20 {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the pointer is %.0f px from %v (want ≤ %d) and %.0f px from the old place %v (want none within 20)", d, pt, hotspotSlack, dOld, old)
	return 0
}

func TestPointerInChromium(t *testing.T) {
	x := pointerX(t, 640, 480)
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	ctx := testenv.Browser(t, 800, 600) // the 640×480 screen fits at 1.25
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token)); err != nil {
		t.Fatal(err)
	}
	at := fit(t, ctx, 640, 480)
	waitPage(t, ctx, 10*time.Second, map[image.Point]color.RGBA{at(320, 240): desk})

	prev := at(100, 100)
	waitShown(t, ctx, prev, nil, reddish)
	t.Run("moves", func(t *testing.T) {
		for _, p := range []image.Point{{500, 80}, {320, 400}, {40, 300}, {600, 440}} {
			if err := x.Warp(p.X, p.Y); err != nil {
				t.Fatal(err)
			}
			d := waitShown(t, ctx, at(p.X, p.Y), &prev, reddish)
			t.Logf("pointer shown at %v after %v (screenshot polling included)", p, d.Round(time.Millisecond))
			prev = at(p.X, p.Y)
		}
		if n := eval[int](t, ctx, "window.deskcast.pointer.updates"); n < 5 {
			t.Fatalf("%d position updates for 5 places", n)
		}
	})
	t.Run("letterboxed", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(900, 400)); err != nil {
			t.Fatal(err)
		}
		defer chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{}) // back to the window's viewport
			return err
		}))
		lb := fit(t, ctx, 640, 480)
		waitShown(t, ctx, lb(600, 440), nil, reddish)
	})
	t.Run("shape", func(t *testing.T) {
		box := image.Rect(400, 300, 560, 420)
		if err := x.SetCursor(box, testenv.GlyphHand, handGreen); err != nil {
			t.Fatal(err)
		}
		if err := x.Warp(480, 360); err != nil {
			t.Fatal(err)
		}
		// The hand's hotspot is at a fingertip: somewhere in its glyph's 16×16.
		start := time.Now()
		for {
			img, err := testenv.Screenshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if nearest(img, at(480, 360), 20, greenish) <= 12 && nearest(img, at(480, 360), 30, reddish) > 30 && nearest(img, prev, 20, reddish) > 20 {
				break
			}
			if time.Since(start) > 5*time.Second {
				saveScreenshot(t, "pointer-shape.png", img)
				t.Logf("pointer state: %s", eval[string](t, ctx, "JSON.stringify({shape: window.deskcast.pointer.shape, pos: window.deskcast.pointer.pos})"))
				t.Fatal("the page does not show the green hand in place of the red arrow")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := x.Warp(200, 200); err != nil {
			t.Fatal(err)
		}
		waitShown(t, ctx, at(200, 200), nil, reddish)
		prev = at(200, 200)
	})
	t.Run("highlight", func(t *testing.T) {
		if err := e.SetPointer(web.PointerHighlight); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, `getComputedStyle(document.querySelector('.pointer-ring')).display === 'block'`)
		waitShown(t, ctx, prev, nil, reddish)
		if err := e.SetPointer(web.PointerOn); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, `getComputedStyle(document.querySelector('.pointer-ring')).display === 'none'`)
	})
	t.Run("off", func(t *testing.T) {
		if err := e.SetPointer(web.PointerOff); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, `document.getElementById('pointer').hidden && !window.deskcast.pointer.ws`)
		img, err := testenv.Screenshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := nearest(img, prev, 30, reddish); d <= 30 {
			t.Fatalf("the pointer still shows %.0f px from its place with --pointer=off", d)
		}
		if err := e.SetPointer(web.PointerOn); err != nil {
			t.Fatal(err)
		}
		waitShown(t, ctx, prev, nil, reddish)
	})
}

// fitElement maps a point of the shared screen (w×h) to the page, where the
// first element sel names shows it with object-fit: contain.
func fitElement(t *testing.T, ctx context.Context, sel string, w, h int) func(x, y int) image.Point {
	t.Helper()
	r := eval[[]float64](t, ctx, `(function () { var r = document.querySelector('`+sel+`').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	s := min(r[2]/float64(w), r[3]/float64(h))
	ox, oy := r[0]+(r[2]-s*float64(w))/2, r[1]+(r[3]-s*float64(h))/2
	return func(x, y int) image.Point {
		return image.Pt(int(ox+s*float64(x)), int(oy+s*float64(y)))
	}
}

// snapshot fetches one JPEG.
func snapshot(t *testing.T, url string) image.Image {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPointerDrawnIntoFrames: players, snapshots and a page without
// JavaScript get the pointer drawn into the JPEG frames; the page's own
// stream (?pointer=0) does not, and is not re-encoded when the pointer moves.
func TestPointerDrawnIntoFrames(t *testing.T) {
	checkLeaks(t)
	x := pointerX(t, 640, 480)
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	stream := openMJPEG(t, base+"/stream.mjpg?t="+token)
	defer stream.Close()
	arrowAt := func(pt image.Point) func(image.Image) bool {
		return func(img image.Image) bool { return nearest(img, pt, 20, reddish) <= hotspotSlack }
	}
	stream.waitFor(t, 5*time.Second, "the arrow at 100,100", arrowAt(image.Pt(100, 100)))

	plain := openMJPEG(t, base+"/stream.mjpg?pointer=0&t="+token)
	defer plain.Close()
	if img, err := plain.nextImage(); err != nil || nearest(img, image.Pt(100, 100), 30, reddish) <= 30 {
		t.Fatalf("the page's stream has the pointer drawn in (%v)", err)
	}
	plainFrames := make(chan struct{}, 64)
	go func() {
		for {
			if _, err := plain.next(); err != nil {
				return
			}
			plainFrames <- struct{}{}
		}
	}()

	t.Run("moves", func(t *testing.T) {
		prev := image.Pt(100, 100)
		for _, p := range []image.Point{{500, 80}, {320, 400}, {600, 440}} {
			if err := x.Warp(p.X, p.Y); err != nil {
				t.Fatal(err)
			}
			stream.waitFor(t, 3*time.Second, "the arrow at "+p.String(), func(img image.Image) bool {
				return arrowAt(p)(img) && nearest(img, prev, 20, reddish) > 20
			})
			prev = p
		}
		if n := len(plainFrames); n != 0 {
			t.Fatalf("the stream without the pointer got %d frames while only the pointer moved", n)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		if img := snapshot(t, base+"/snapshot.jpg?t="+token); nearest(img, image.Pt(600, 440), 20, reddish) > hotspotSlack {
			t.Fatal("the snapshot has no pointer at 600,440")
		}
	})
	t.Run("without JavaScript", func(t *testing.T) {
		ctx := testenv.Browser(t, 800, 600)
		noJS := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		})
		if err := chromedp.Do(ctx, noJS, chromedp.Navigate(base+"/?t="+token)); err != nil {
			t.Fatal(err)
		}
		// The <noscript> picture is laid out as the browser pleases (at its
		// natural size here): the mapping comes from its box.
		at := fitElement(t, ctx, "img.screen", 640, 480)
		waitShown(t, ctx, at(600, 440), nil, reddish)
		if err := x.Warp(200, 120); err != nil {
			t.Fatal(err)
		}
		old := at(600, 440)
		waitShown(t, ctx, at(200, 120), &old, reddish)
	})
	t.Run("off", func(t *testing.T) {
		if err := e.SetPointer(web.PointerOff); err != nil {
			t.Fatal(err)
		}
		m := openMJPEG(t, base+"/stream.mjpg?t="+token)
		defer m.Close()
		img, err := m.nextImage()
		if err != nil {
			t.Fatal(err)
		}
		if d := nearest(img, image.Pt(200, 120), 30, reddish); d <= 30 {
			t.Fatalf("--pointer=off: the stream has the pointer %.0f px from it", d)
		}
		if d := nearest(snapshot(t, base+"/snapshot.jpg?t="+token), image.Pt(200, 120), 30, reddish); d <= 30 {
			t.Fatalf("--pointer=off: the snapshot has the pointer %.0f px from it", d)
		}
	})
}

// TestPointerFlagOff: the binary's --pointer=off shows no pointer to players.
func TestPointerFlagOff(t *testing.T) {
	pointerX(t, 320, 240)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startHeadless(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--pointer=off", "--audio", "none")
	if st := status(t, base); st.Pointer != web.PointerOff {
		t.Fatalf("status pointer %q, want off", st.Pointer)
	}
	m := openMJPEG(t, base+"/stream.mjpg?t="+token)
	defer m.Close()
	img, err := m.nextImage()
	if err != nil {
		t.Fatal(err)
	}
	if d := nearest(img, image.Pt(100, 100), 30, reddish); d <= 30 {
		t.Fatalf("the stream has the pointer %.0f px from it", d)
	}
}
