package e2e

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

// waitPage takes screenshots until every point shows its colour.
func waitPage(t *testing.T, ctx context.Context, within time.Duration, points map[image.Point]color.RGBA) time.Duration {
	t.Helper()
	start := time.Now()
	var last image.Image
	for time.Since(start) < within {
		img, err := testenv.Screenshot(ctx)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		last = img
		ok := true
		for p, c := range points {
			ok = ok && near(img.At(p.X, p.Y), c)
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for p, c := range points {
		got = append(got, fmt.Sprintf("%v: %v (want %v)", p, last.At(p.X, p.Y), c))
	}
	t.Fatalf("page did not show the colours within %v: %s", within, strings.Join(got, ", "))
	return 0
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// waitCard waits until the page's status card shows a title containing want ("" for hidden).
func waitCard(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	js := `document.getElementById('card').hidden ? '' : document.getElementById('card-title').textContent`
	deadline := time.Now().Add(10 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		got = eval[string](t, ctx, js)
		if (want == "" && got == "") || (want != "" && strings.Contains(got, want)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("status card shows %q, want %q", got, want)
}

// fit maps a point of the shared screen (w×h) to the page, where the picture
// is fitted into the viewport with its aspect kept (object-fit: contain).
func fit(t *testing.T, ctx context.Context, w, h int) func(x, y int) image.Point {
	vw := eval[float64](t, ctx, "window.innerWidth")
	vh := eval[float64](t, ctx, "window.innerHeight")
	s := min(vw/float64(w), vh/float64(h))
	ox, oy := (vw-s*float64(w))/2, (vh-s*float64(h))/2
	return func(x, y int) image.Point {
		return image.Pt(int(ox+s*float64(x)), int(oy+s*float64(y)))
	}
}

func TestViewerPageInChromium(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(red)
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	// The 800×600 viewport fits the 640×480 screen exactly, scaled by 1.25.
	ctx := testenv.Browser(t, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token)); err != nil {
		t.Fatal(err)
	}
	at := fit(t, ctx, 640, 480)
	centre := at(320, 240)
	waitPage(t, ctx, 10*time.Second, map[image.Point]color.RGBA{centre: red})

	t.Run("token leaves the address bar", func(t *testing.T) {
		if href := eval[string](t, ctx, "location.href"); strings.Contains(href, token) {
			t.Fatalf("location.href = %q still holds the token", href)
		}
	})

	t.Run("follows changes", func(t *testing.T) {
		for _, c := range []color.RGBA{blue, green, white} {
			x.Fill(c)
			d := waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: c})
			t.Logf("page showed %v %v after the screen changed (screenshot polling included)", c, d.Round(time.Millisecond))
		}
	})

	t.Run("geometry", func(t *testing.T) {
		paintQuadrants(t, x)
		waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{
			at(160, 120): red, at(480, 120): green, at(160, 360): blue, at(480, 360): white,
			// the quadrants meet at the screen's centre, to within a few pixels
			at(316, 236): red, at(324, 236): green, at(316, 244): blue, at(324, 244): white,
		})
	})

	t.Run("stats overlay", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-stats"))); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		txt := ""
		for time.Now().Before(deadline) {
			txt = eval[string](t, ctx, "document.getElementById('stats').hidden ? '' : document.getElementById('stats').textContent")
			if strings.Contains(txt, "640×480") && strings.Contains(txt, "viewers    1") && strings.Contains(txt, "latency") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(txt, "640×480") || !strings.Contains(txt, "fps") || !strings.Contains(txt, "viewers    1") {
			t.Fatalf("stats overlay = %q", txt)
		}
		if os.Getenv("DESKCAST_SCREENSHOTS") != "" {
			x.Put(testenv.Desktop(640, 480, 2))
			time.Sleep(1500 * time.Millisecond)
			if img, err := testenv.Screenshot(ctx); err == nil {
				saveScreenshot(t, "viewer.png", img)
			}
		}
	})

	t.Run("paused", func(t *testing.T) {
		waitCard(t, ctx, "")
		if err := e.SetPaused(true); err != nil {
			t.Fatal(err)
		}
		waitCard(t, ctx, "Paused")
		if err := e.SetPaused(false); err != nil {
			t.Fatal(err)
		}
		waitCard(t, ctx, "")
		x.Fill(green)
		waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: green})
	})

	t.Run("reconnects after a restart", func(t *testing.T) {
		e.Stop()
		waitCard(t, ctx, "Reconnecting")
		x.Fill(blue)
		if err := e.Start(); err != nil { // same port and (fixed) token
			t.Fatal(err)
		}
		waitCard(t, ctx, "")
		waitPage(t, ctx, 10*time.Second, map[image.Point]color.RGBA{centre: blue})
	})
}

// TestViewerPageWithoutJavaScript covers old TV browsers: the <noscript>
// <img> alone must show the screen.
func TestViewerPageWithoutJavaScript(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	ctx := testenv.Browser(t, 800, 600)
	noJS := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
	if err := chromedp.Do(ctx, noJS, chromedp.Navigate(base+"/?t="+token)); err != nil {
		t.Fatal(err)
	}
	centre := fit(t, ctx, 640, 480)(320, 240)
	waitPage(t, ctx, 10*time.Second, map[image.Point]color.RGBA{centre: green})
	x.Fill(red)
	waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: red})
}
