package e2e

import (
	"context"
	"fmt"
	"image"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coder/websocket"
	"github.com/jezek/xgb/xproto"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

// The remote-control tests drive a real viewer page in headless Chromium with
// CDP input and watch what reaches the X server: an input-only window over
// the whole Xvfb screen records every pointer and key event.

const (
	ctlScreenW, ctlScreenH = 640, 480
	maxErrPx               = 2 // px on the screen, each way
)

// controlX starts a 640×480 X screen in an X11 session, painted so that the
// stream has a picture, with the recorder's window over all of it.
func controlX(t *testing.T) *testenv.Recorder {
	t.Helper()
	t.Setenv("XDG_SESSION_TYPE", "x11")
	t.Setenv("WAYLAND_DISPLAY", "")
	x := testenv.StartX(t, ctlScreenW, ctlScreenH)
	rec := x.Record(t)
	paintQuadrants(t, x)
	return rec
}

// controlPage is a viewer page showing the shared area in a Chromium viewport.
type controlPage struct {
	e      *engine.Engine
	base   string
	ctx    context.Context
	id     string          // the viewer's ID, as the presenter sees it
	vw, vh float64         // the page's viewport, in CSS pixels
	area   image.Rectangle // the shared monitor or region, in screen pixels
	dpr    float64         // device pixels per CSS pixel, when emulated; 0 for 1
}

// openControl starts an engine with s and opens its viewer page with the
// right token in a vw×vh Chromium; it returns once the page shows the picture
// and, when control is on, has its control socket open. setup runs before the
// page loads.
func openControl(t *testing.T, s engine.Settings, vw, vh int, setup ...chromedp.Action[chromedp.Void]) *controlPage {
	t.Helper()
	start := time.Now()
	e, base := startEngine(t, s)
	if m := e.Server().ControlMode(); m != s.Control {
		t.Fatalf("control mode %q after Start, want %q (unavailable: %q)", m, s.Control, e.Server().Status().Control.Unavailable)
	}
	p := &controlPage{e: e, base: base, area: image.Rect(0, 0, ctlScreenW, ctlScreenH)}
	if !s.Region.Empty() {
		p.area = s.Region
	}
	p.ctx = testenv.Browser(t, vw, vh)
	// The window's size leaves the viewport smaller (and at least 500 wide):
	// set the viewport itself.
	steps := append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(int64(vw), int64(vh))}, setup...)
	if err := chromedp.Do(p.ctx, append(steps, chromedp.Navigate(base+"/?t="+token))...); err != nil {
		t.Fatal(err)
	}
	// The picture: the MJPEG <img> or, when the server offers WebRTC, the <video>.
	waitJS(t, p.ctx, 10*time.Second, "window.deskcast.picture.size().w > 0")
	waitCard(t, p.ctx, "") // the card sits over the picture's centre until the first frame
	p.vw, p.vh = eval[float64](t, p.ctx, "window.innerWidth"), eval[float64](t, p.ctx, "window.innerHeight")
	if p.vw != float64(vw) || p.vh != float64(vh) {
		t.Fatalf("viewport is %v×%v, want %d×%d", p.vw, p.vh, vw, vh)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.id == "" {
		vs, _ := e.Server().Viewers()
		for _, v := range vs {
			if v.Streams > 0 && v.State == access.ViewerAllowed {
				p.id = v.ID
			}
		}
		if p.id == "" && time.Now().After(deadline) {
			t.Fatalf("no viewer watching: %+v", vs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Control != access.ControlOff {
		waitJS(t, p.ctx, 5*time.Second, "!!window.deskcast.control.ws && window.deskcast.control.ws.readyState === 1")
	}
	t.Logf("engine, browser and %dx%d page ready in %v", vw, vh, time.Since(start).Round(time.Millisecond))
	return p
}

// waitJS waits until the expression is true on the page.
func waitJS(t *testing.T, ctx context.Context, within time.Duration, js string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !eval[bool](t, ctx, js) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", js, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grant gives the page control and waits for its banner, which shows the
// page heard of the grant.
func (p *controlPage) grant(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := p.e.Grant(p.id); err != nil {
		t.Fatal(err)
	}
	waitJS(t, p.ctx, 5*time.Second, "!document.getElementById('control-banner').hidden")
	t.Logf("banner shown %v after Grant", time.Since(start).Round(time.Millisecond))
}

// fit returns the picture's scale and offset on the page: the shared area
// fitted into the viewport with its aspect kept (object-fit: contain).
func (p *controlPage) fit() (s, ox, oy float64) {
	w, h := float64(p.area.Dx()), float64(p.area.Dy())
	s = min(p.vw/w, p.vh/h)
	return s, (p.vw - s*w) / 2, (p.vh - s*h) / 2
}

// page returns where the screen pixel pt is shown on the page: the middle
// of its square there, but at least a whole CSS pixel inside the picture's
// far edges. (A picture shown smaller than the screen has screen pixels no
// CSS pixel reaches; the maxErrPx covers that.)
func (p *controlPage) page(pt image.Point) (float64, float64) {
	s, ox, oy := p.fit()
	x := min(ox+s*(float64(pt.X-p.area.Min.X)+0.5), ox+s*float64(p.area.Dx())-1)
	y := min(oy+s*(float64(pt.Y-p.area.Min.Y)+0.5), oy+s*float64(p.area.Dy())-1)
	return x, y
}

// screen returns the screen pixel shown at the page point x, y.
func (p *controlPage) screen(x, y float64) image.Point {
	s, ox, oy := p.fit()
	return image.Pt(p.area.Min.X+int(math.Floor((x-ox)/s)), p.area.Min.Y+int(math.Floor((y-oy)/s)))
}

// at returns the screen point fx, fy of the way across the shared area.
func (p *controlPage) at(fx, fy float64) image.Point {
	return image.Pt(p.area.Min.X+int(fx*float64(p.area.Dx()-1)), p.area.Min.Y+int(fy*float64(p.area.Dy()-1)))
}

// letterbox returns a page point in the black bars beside the picture, if any.
func (p *controlPage) letterbox() (x, y float64, ok bool) {
	_, ox, oy := p.fit()
	switch {
	case oy > 8:
		return p.vw / 2, oy / 2, true
	case ox > 8:
		return ox / 2, p.vh / 2, true
	}
	return 0, 0, false
}

// onPicture fails the test unless the picture is what the page shows at pt.
func (p *controlPage) onPicture(t *testing.T, pt image.Point) {
	t.Helper()
	x, y := p.page(pt)
	js := fmt.Sprintf("(function (e) { return e ? e.tagName + '#' + e.id : 'nothing'; })(document.elementFromPoint(%g, %g))", x, y)
	if el := eval[string](t, p.ctx, js); el != "IMG#screen" && el != "VIDEO#video" {
		t.Fatalf("screen point %v is page point %.1f,%.1f, where the page shows %s, not the picture", pt, x, y, el)
	}
}

var buttonMask = map[input.MouseButton]int64{input.MouseButtonLeft: 1, input.MouseButtonRight: 2, input.MouseButtonMiddle: 4}

func heldButtons(n int64) chromedp.MouseOption {
	return func(p *input.DispatchMouseEventParams) { p.Buttons = n }
}

// mouse dispatches one CDP mouse event at the page point x, y.
func (p *controlPage) mouse(t *testing.T, typ input.DispatchMouseEventType, x, y float64, opts ...chromedp.MouseOption) {
	t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.MouseEvent(typ, x, y, opts...)); err != nil {
		t.Fatalf("%s at %.1f,%.1f: %v", typ, x, y, err)
	}
}

// click presses and releases b at the page point x, y; clicks is the
// count the browser reports (2 for a double click's second click).
func (p *controlPage) click(t *testing.T, x, y float64, b input.MouseButton, clicks int64) {
	t.Helper()
	p.mouse(t, chromedp.MousePressed, x, y, chromedp.ButtonType(b), chromedp.ClickCount(int(clicks)), heldButtons(buttonMask[b]))
	p.mouse(t, chromedp.MouseReleased, x, y, chromedp.ButtonType(b), chromedp.ClickCount(int(clicks)), heldButtons(0))
}

func (p *controlPage) clickAt(t *testing.T, pt image.Point, b input.MouseButton, clicks int64) {
	t.Helper()
	x, y := p.page(pt)
	p.click(t, x, y, b, clicks)
}

// wheel turns the wheel by dx, dy CSS pixels at pt.
func (p *controlPage) wheel(t *testing.T, pt image.Point, dx, dy float64) {
	t.Helper()
	x, y := p.page(pt)
	// With an emulated device scale, CDP takes wheel deltas in device pixels
	// (the page sees them divided by it), while x, y stay CSS pixels.
	if p.dpr != 0 {
		dx, dy = dx*p.dpr, dy*p.dpr
	}
	// DispatchMouseEventParams leaves out a zero delta, which the browser
	// then refuses: send the command's parameters as they are.
	wheel := cdp.Command[map[string]any, cdp.Empty]{Method: input.CommandDispatchMouseEvent}
	if _, err := chromedp.Call(p.ctx, wheel, map[string]any{"type": "mouseWheel", "x": x, "y": y, "deltaX": dx, "deltaY": dy}); err != nil {
		t.Fatalf("wheel %v,%v at %.1f,%.1f: %v", dx, dy, x, y, err)
	}
}

// drag presses the left button at from, moves through via and lets go at to.
func (p *controlPage) drag(t *testing.T, from image.Point, via []image.Point, to image.Point) {
	t.Helper()
	x, y := p.page(from)
	p.mouse(t, chromedp.MouseMoved, x, y)
	p.mouse(t, chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(1))
	for _, v := range append(via, to) {
		x, y = p.page(v)
		time.Sleep(40 * time.Millisecond) // the page sends at most one move a frame
		p.mouse(t, chromedp.MouseMoved, x, y, chromedp.ButtonLeft, heldButtons(1))
	}
	time.Sleep(40 * time.Millisecond)
	p.mouse(t, chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(0))
}

// keys types with CDP key events: each string is one chromedp.KeyEvent.
func (p *controlPage) keys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := chromedp.Do(p.ctx, chromedp.KeyEvent(k)); err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
	}
}

// wantButton is a button event the recorder should see.
type wantButton struct {
	kind   string // "press" or "release"
	button byte   // X button: 1 left, 2 middle, 3 right, 4/5 wheel up/down, 6/7 left/right
	at     image.Point
}

func clickOf(b byte, at image.Point) []wantButton {
	return []wantButton{{"press", b, at}, {"release", b, at}}
}

func isButton(e testenv.InputEvent) bool { return e.Kind == "press" || e.Kind == "release" }

// nButtons returns a check for Recorder.Until: n button events seen.
func nButtons(n int) func([]testenv.InputEvent) bool {
	return func(evs []testenv.InputEvent) bool {
		c := 0
		for _, e := range evs {
			if isButton(e) {
				c++
			}
		}
		return c >= n
	}
}

// screenDist is how far apart two screen points are, along the farther axis.
func screenDist(a, b image.Point) int {
	d := a.Sub(b)
	return max(d.X, -d.X, d.Y, -d.Y)
}

// checkButtons compares the button events among evs with want, in order,
// each within maxErrPx of its point. Every event must be a pointer event
// inside area. It returns the largest error.
func checkButtons(t *testing.T, evs []testenv.InputEvent, area image.Rectangle, want ...wantButton) int {
	t.Helper()
	var got []testenv.InputEvent
	for _, e := range evs {
		if !e.Pt().In(area) {
			t.Errorf("%v outside the shared area %v", e, area)
		}
		switch {
		case isButton(e):
			got = append(got, e)
		case e.Kind != "motion":
			t.Errorf("unexpected %v", e)
		}
	}
	worst := 0
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Fatalf("missing %s %d at %v (all events: %v)", want[i].kind, want[i].button, want[i].at, evs)
		case i >= len(want):
			t.Fatalf("unexpected %v (all events: %v)", got[i], evs)
		}
		g, w := got[i], want[i]
		if g.Kind != w.kind || g.Detail != w.button {
			t.Fatalf("event %d is %v, want %s %d at %v (all events: %v)", i, g, w.kind, w.button, w.at, evs)
		}
		d := screenDist(g.Pt(), w.at)
		if d > maxErrPx {
			t.Errorf("%v is %d px from %v", g, d, w.at)
		}
		worst = max(worst, d)
	}
	return worst
}

// controlStep runs f as a subtest; when it fails, the input it left in flight is
// drained so that the next step starts clean.
func controlStep(t *testing.T, rec *testenv.Recorder, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		rec.During(500 * time.Millisecond)
	}
	rec.Drain()
}

// TestControlPointer: with control granted, clicks, double clicks, drags
// and the wheel on the viewer page reach the X screen with the right buttons
// at the right places, whatever the viewport's shape, the stream's downscale
// or the shared region.
func TestControlPointer(t *testing.T) {
	checkLeaks(t)
	rec := controlX(t)
	region, err := capture.ParseRegion("100,50,320,240")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		vw, vh int
		s      engine.Settings
		scale  float64 // device pixels per CSS pixel; 0 for 1
	}{
		{"800x600 exact fit", 800, 600, engine.Settings{}, 0},
		{"400x800 phone letterboxed", 400, 800, engine.Settings{}, 0},
		{"1200x400 wide pillarboxed", 1200, 400, engine.Settings{}, 0},
		{"downscaled to 320 wide in 1000x600", 1000, 600, engine.Settings{MaxWidth: 320}, 0},
		{"region 100,50 320x240 in 800x700", 800, 700, engine.Settings{Region: region}, 0},
		// A HiDPI phone, and a browser zoomed to 150% (which is what zoom
		// is to a page: fewer CSS pixels, each of 1.5 device pixels).
		{"HiDPI phone 390x844 at 3x", 390, 844, engine.Settings{}, 3},
		{"browser zoom 150% (800x600 CSS px)", 800, 600, engine.Settings{}, 1.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			s.FPS, s.Quality, s.Control = 30, 80, access.ControlGrant
			var setup []chromedp.Action[chromedp.Void]
			if tc.scale != 0 {
				setup = append(setup, chromedp.EmulateViewport(int64(tc.vw), int64(tc.vh), chromedp.EmulateScale(tc.scale)))
			}
			p := openControl(t, s, tc.vw, tc.vh, setup...)
			if tc.scale != 0 {
				if dpr := eval[float64](t, p.ctx, "window.devicePixelRatio"); dpr != tc.scale {
					t.Fatalf("devicePixelRatio %v, want %v", dpr, tc.scale)
				}
				p.dpr = tc.scale
			}
			if w := eval[int](t, p.ctx, "window.deskcast.picture.size().w"); s.MaxWidth > 0 && w != s.MaxWidth {
				t.Fatalf("picture is %d wide, want the downscaled %d", w, s.MaxWidth)
			}
			p.grant(t)
			if evs := rec.Drain(); len(evs) > 0 {
				t.Fatalf("input before any action: %v", evs)
			}
			worst := 0

			controlStep(t, rec, "left clicks", func(t *testing.T) {
				targets := []image.Point{
					p.at(0, 0), p.at(1, 0), p.at(0, 1), p.at(1, 1), // the corner pixels
					p.area.Min.Add(image.Pt(2, 2)), p.area.Max.Sub(image.Pt(3, 3)),
					p.at(0.5, 0.5), p.at(0.37, 0.81), p.at(0.9, 0.13),
				}
				var want []wantButton
				if x, y, ok := p.letterbox(); ok {
					p.click(t, x, y, input.MouseButtonLeft, 1) // on the black bar: nothing
				}
				for _, pt := range targets {
					p.onPicture(t, pt)
				}
				start := time.Now()
				for _, pt := range targets {
					p.clickAt(t, pt, input.MouseButtonLeft, 1)
					want = append(want, clickOf(1, pt)...)
				}
				var took time.Duration
				evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, func(evs []testenv.InputEvent) bool {
					took = time.Since(start)
					return nButtons(len(want))(evs)
				})
				worst = max(worst, checkButtons(t, evs, p.area, want...))
				t.Logf("%d clicks: the last release reached the X server %v after the first press was dispatched",
					len(targets), took.Round(time.Millisecond))
			})

			controlStep(t, rec, "right and middle", func(t *testing.T) {
				r, m := p.at(0.8, 0.7), p.at(0.2, 0.3)
				p.clickAt(t, r, input.MouseButtonRight, 1)
				p.clickAt(t, m, input.MouseButtonMiddle, 1)
				want := append(clickOf(3, r), clickOf(2, m)...)
				evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(len(want)))
				worst = max(worst, checkButtons(t, evs, p.area, want...))
			})

			controlStep(t, rec, "double click", func(t *testing.T) {
				pt := p.at(0.6, 0.45)
				p.clickAt(t, pt, input.MouseButtonLeft, 1)
				p.clickAt(t, pt, input.MouseButtonLeft, 2)
				want := append(clickOf(1, pt), clickOf(1, pt)...)
				evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(len(want)))
				worst = max(worst, checkButtons(t, evs, p.area, want...))
				var presses []testenv.InputEvent
				for _, e := range evs {
					if e.Kind == "press" {
						presses = append(presses, e)
					}
				}
				gap := time.Duration(presses[1].Time-presses[0].Time) * time.Millisecond
				if gap > 400*time.Millisecond {
					t.Errorf("the double click's presses came %v apart: too slow for a double click", gap)
				}
				t.Logf("double click: presses %v apart on the X server", gap)
			})

			controlStep(t, rec, "drag", func(t *testing.T) {
				from, to := p.at(0.25, 0.25), p.at(0.75, 0.66)
				var via []image.Point
				for i := 1; i <= 3; i++ {
					f := float64(i) / 4
					via = append(via, image.Pt(from.X+int(f*float64(to.X-from.X)), from.Y+int(f*float64(to.Y-from.Y))))
				}
				p.drag(t, from, via, to)
				evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(2))
				worst = max(worst, checkButtons(t, evs, p.area, wantButton{"press", 1, from}, wantButton{"release", 1, to}))
				// Between press and release: motion with button 1 held, along the way, ending at to.
				var moves []testenv.InputEvent
				in := false
				for _, e := range evs {
					switch {
					case e.Kind == "press":
						in = true
					case e.Kind == "release":
						in = false
					case in:
						moves = append(moves, e)
					}
				}
				if len(moves) < 2 {
					t.Fatalf("%d motion events during the drag, want one for most steps: %v", len(moves), evs)
				}
				for _, e := range moves {
					if e.State&xproto.KeyButMaskButton1 == 0 {
						t.Errorf("%v without button 1 held (state %#x)", e, e.State)
					}
					d := math.MaxInt
					for _, v := range append(via, to) {
						d = min(d, screenDist(e.Pt(), v))
					}
					if d > maxErrPx {
						t.Errorf("%v is %d px from every step of the drag %v", e, d, append(via, to))
					}
					worst = max(worst, d)
				}
				if last := moves[len(moves)-1]; screenDist(last.Pt(), to) > maxErrPx {
					t.Errorf("the drag's last motion %v is not at %v", last, to)
				}
				t.Logf("drag: %d motion events between press and release", len(moves))
			})

			if _, _, ok := p.letterbox(); ok {
				controlStep(t, rec, "drag out of the picture", func(t *testing.T) {
					// Press in the middle, let go on the black bar beyond the
					// picture's edge: the release lands on that edge.
					from := p.at(0.5, 0.5)
					x, y := p.page(from)
					sc, ox, oy := p.fit()
					var inside, outside [2]float64
					var edge image.Point
					if oy > 8 { // bars above and below: go down
						inside, outside = [2]float64{x, (y + oy + sc*float64(p.area.Dy())) / 2}, [2]float64{x, p.vh - oy/2}
						edge = image.Pt(from.X, p.area.Max.Y-1)
					} else { // bars left and right: go right
						inside, outside = [2]float64{(x + ox + sc*float64(p.area.Dx())) / 2, y}, [2]float64{p.vw - ox/2, y}
						edge = image.Pt(p.area.Max.X-1, from.Y)
					}
					p.mouse(t, chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(1))
					for _, pt := range [][2]float64{inside, outside} {
						time.Sleep(40 * time.Millisecond)
						p.mouse(t, chromedp.MouseMoved, pt[0], pt[1], chromedp.ButtonLeft, heldButtons(1))
					}
					time.Sleep(40 * time.Millisecond)
					p.mouse(t, chromedp.MouseReleased, outside[0], outside[1], chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(0))
					evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(2))
					worst = max(worst, checkButtons(t, evs, p.area, wantButton{"press", 1, from}, wantButton{"release", 1, edge}))
				})
			}

			controlStep(t, rec, "wheel", func(t *testing.T) {
				down, up, right := p.at(0.6, 0.4), p.at(0.3, 0.7), p.at(0.5, 0.5)
				p.wheel(t, down, 0, 300) // 100 px a notch: 3 down
				p.wheel(t, up, 0, -200)  // 2 up
				p.wheel(t, right, 100, 0)
				var want []wantButton
				for range 3 {
					want = append(want, clickOf(5, down)...)
				}
				for range 2 {
					want = append(want, clickOf(4, up)...)
				}
				want = append(want, clickOf(7, right)...)
				evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(len(want)))
				worst = max(worst, checkButtons(t, evs, p.area, want...))
			})

			st := p.e.Server().Status().Control
			t.Logf("largest error %d px; %d events injected, %d malformed, %d refused, %d limited",
				worst, st.Events, st.Malformed, st.Refused, st.Limited)
			if st.Malformed+st.Refused+st.Limited > 0 {
				t.Errorf("the page's messages were dropped: %+v", st)
			}
		})
	}
}

// keysymNames names the keysyms the keyboard test expects.
var keysymNames = map[xproto.Keysym]string{0xff0d: "Return", 0xff08: "BackSpace", 0xff51: "Left", 0x20: "space",
	0x61: "a", 0x5a: "Z", 0xffe1: "Shift_L", 0xffe2: "Shift_R"}

// TestControlKeyboard: named keys go down and up as the same keys on the
// X screen; characters are typed, with Shift for a capital.
func TestControlKeyboard(t *testing.T) {
	checkLeaks(t)
	rec := controlX(t)
	p := openControl(t, engine.Settings{FPS: 30, Quality: 80, Control: access.ControlGrant}, 800, 600)
	p.grant(t)
	// Focus: a click in the picture, as a user would.
	pt := p.at(0.5, 0.5)
	p.clickAt(t, pt, input.MouseButtonLeft, 1)
	checkButtons(t, rec.Until(t, 5*time.Second, 100*time.Millisecond, nButtons(2)), p.area, clickOf(1, pt)...)

	p.keys(t, kb.Enter, kb.Backspace, kb.ArrowLeft, " ", "aZ")
	want := []string{
		"keydown Return", "keyup Return", "keydown BackSpace", "keyup BackSpace", "keydown Left", "keyup Left",
		"keydown space", "keyup space", "keydown a", "keyup a",
		"keydown Shift", "keydown Z", "keyup Z", "keyup Shift",
	}
	evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, func(evs []testenv.InputEvent) bool { return len(evs) >= len(want) })
	m := rec.Keysyms(t)
	var got []string
	for _, e := range evs {
		if e.Kind != "keydown" && e.Kind != "keyup" {
			t.Errorf("unexpected %v while typing", e)
			continue
		}
		k := testenv.KeysymOf(m, e)
		name, ok := keysymNames[k]
		if !ok {
			name = fmt.Sprintf("%#x", k)
		}
		if k == 0xffe1 || k == 0xffe2 {
			name = "Shift"
		}
		if name == "Z" && e.State&xproto.ModMaskShift == 0 {
			name = "Z without Shift"
		}
		got = append(got, e.Kind+" "+name)
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("key events:\n got %q\nwant %q", got, want)
	}
	st := p.e.Server().Status().Control
	t.Logf("%d key events on the X server; %d control events injected", len(evs), st.Events)
}

// touch dispatches one CDP touch event; points are page points.
func (p *controlPage) touch(t *testing.T, typ input.DispatchTouchEventType, points ...[2]float64) {
	t.Helper()
	tps := []*input.TouchPoint{}
	for i, pt := range points {
		id, one := float64(i), 1.0
		tps = append(tps, &input.TouchPoint{X: pt[0], Y: pt[1], ID: &id, RadiusX: &one, RadiusY: &one, Force: &one})
	}
	if _, err := chromedp.Call(p.ctx, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: tps}); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
}

// TestControlTouch: on a phone-shaped page with touch, a tap clicks, a long
// press right-clicks, one finger drags and two fingers scroll.
func TestControlTouch(t *testing.T) {
	checkLeaks(t)
	rec := controlX(t)
	touch := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5})
		return err
	})
	p := openControl(t, engine.Settings{FPS: 30, Quality: 80, Control: access.ControlGrant}, 400, 800, touch)
	p.grant(t)
	// Make sure the page sees touch pointers, or every check below is moot.
	eval[bool](t, p.ctx, `window.__types = []; document.getElementById('stage').addEventListener('pointerdown',
		function (e) { window.__types.push(e.pointerType); }, true); true`)
	start := time.Now()
	worst := 0
	xy := func(pt image.Point) [2]float64 { x, y := p.page(pt); return [2]float64{x, y} }

	controlStep(t, rec, "tap", func(t *testing.T) {
		pt := p.at(0.3, 0.6)
		p.touch(t, input.DispatchTouchEventTypeTouchStart, xy(pt))
		p.touch(t, input.DispatchTouchEventTypeTouchEnd)
		evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(2))
		if ty := eval[string](t, p.ctx, "window.__types.join()"); ty != "touch" {
			t.Fatalf("pointer types %q, want touch", ty)
		}
		worst = max(worst, checkButtons(t, evs, p.area, clickOf(1, pt)...))
	})

	controlStep(t, rec, "long press", func(t *testing.T) {
		pt := p.at(0.7, 0.2)
		p.touch(t, input.DispatchTouchEventTypeTouchStart, xy(pt))
		time.Sleep(800 * time.Millisecond)
		p.touch(t, input.DispatchTouchEventTypeTouchEnd)
		evs := rec.Until(t, 5*time.Second, 400*time.Millisecond, nButtons(2))
		worst = max(worst, checkButtons(t, evs, p.area, clickOf(3, pt)...))
	})

	controlStep(t, rec, "one-finger drag", func(t *testing.T) {
		from, to := p.at(0.2, 0.2), p.at(0.8, 0.75)
		p.touch(t, input.DispatchTouchEventTypeTouchStart, xy(from))
		var via []image.Point
		for i := 1; i <= 4; i++ {
			f := float64(i) / 4
			v := image.Pt(from.X+int(f*float64(to.X-from.X)), from.Y+int(f*float64(to.Y-from.Y)))
			via = append(via, v)
			time.Sleep(30 * time.Millisecond)
			p.touch(t, input.DispatchTouchEventTypeTouchMove, xy(v))
		}
		p.touch(t, input.DispatchTouchEventTypeTouchEnd)
		evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(2))
		worst = max(worst, checkButtons(t, evs, p.area, wantButton{"press", 1, from}, wantButton{"release", 1, to}))
		n := 0
		for _, e := range evs {
			if e.Kind != "motion" || e.State&xproto.KeyButMaskButton1 == 0 {
				continue
			}
			n++
			d := math.MaxInt
			for _, v := range via {
				d = min(d, screenDist(e.Pt(), v))
			}
			if d > maxErrPx {
				t.Errorf("%v is %d px from every step of the drag %v", e, d, via)
			}
		}
		if n < 2 {
			t.Errorf("%d motion events with button 1 held, want one for most of the %d steps: %v", n, len(via), evs)
		}
		t.Logf("one-finger drag: %d motion events with button 1 held", n)
	})

	controlStep(t, rec, "two-finger scroll", func(t *testing.T) {
		// Two fingers 80 px apart move up 40 px a step: a notch down each step.
		x, y := p.page(p.at(0.5, 0.7))
		var want []wantButton
		p.touch(t, input.DispatchTouchEventTypeTouchStart, [2]float64{x - 40, y}, [2]float64{x + 40, y})
		for i := 1; i <= 3; i++ {
			yi := y - 40*float64(i)
			time.Sleep(30 * time.Millisecond)
			p.touch(t, input.DispatchTouchEventTypeTouchMove, [2]float64{x - 40, yi}, [2]float64{x + 40, yi})
			want = append(want, clickOf(5, p.screen(x, yi))...)
		}
		p.touch(t, input.DispatchTouchEventTypeTouchEnd)
		evs := rec.Until(t, 5*time.Second, 700*time.Millisecond, nButtons(len(want)))
		worst = max(worst, checkButtons(t, evs, p.area, want...))
	})
	t.Logf("touch: largest error %d px, %v for all", worst, time.Since(start).Round(time.Millisecond))
}

// actions does on the page what the other tests check reaches the screen:
// clicks with each button, a double click, a drag, the wheel and keys.
func (p *controlPage) actions(t *testing.T) {
	t.Helper()
	p.clickAt(t, p.at(0.5, 0.5), input.MouseButtonLeft, 1)
	p.clickAt(t, p.at(0.2, 0.8), input.MouseButtonRight, 1)
	p.clickAt(t, p.at(0.8, 0.2), input.MouseButtonMiddle, 1)
	p.clickAt(t, p.at(0.4, 0.4), input.MouseButtonLeft, 1)
	p.clickAt(t, p.at(0.4, 0.4), input.MouseButtonLeft, 2)
	p.drag(t, p.at(0.1, 0.1), []image.Point{p.at(0.3, 0.3)}, p.at(0.6, 0.5))
	p.wheel(t, p.at(0.5, 0.5), 0, 300)
	p.wheel(t, p.at(0.5, 0.5), 0, -200)
	p.keys(t, kb.Enter, kb.Backspace, kb.ArrowLeft, "aZ")
}

// rawControl sends control messages straight down the page's control
// socket (or a new one when the page has none), as a page that ignores
// its own "not granted" would, and returns how many it sent.
func (p *controlPage) rawControl(t *testing.T) int {
	t.Helper()
	js := `new Promise(function (resolve) {
		var msgs = [{t: 'move', x: .5, y: .5}, {t: 'down', x: .5, y: .5, b: 0}, {t: 'up', x: .5, y: .5, b: 0},
			{t: 'down', x: .25, y: .75, b: 2}, {t: 'up', x: .25, y: .75, b: 2},
			{t: 'wheel', x: .5, y: .5, dy: 2}, {t: 'key', k: 'Enter', down: true}, {t: 'key', k: 'Enter', down: false},
			{t: 'text', s: 'xY'}];
		function go(ws) { msgs.forEach(function (m) { ws.send(JSON.stringify(m)); }); resolve(msgs.length); }
		var ws = window.deskcast && window.deskcast.control.ws;
		if (ws && ws.readyState === 1) return go(ws);
		ws = new WebSocket('ws://' + location.host + '/ws/control');
		ws.onopen = function () { go(ws); };
		ws.onerror = function () { resolve(-1); };
	})`
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("sending raw control messages: %v", err)
	}
	return v
}

// noInput fails the test if the recorder sees any input within d.
func noInput(t *testing.T, rec *testenv.Recorder, d time.Duration) {
	t.Helper()
	if evs := rec.During(d); len(evs) > 0 {
		t.Fatalf("%d events reached the screen: %v", len(evs), evs)
	}
}

// waitRefused waits until the server has refused at least n control messages.
func waitRefused(t *testing.T, e *engine.Engine, n uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for e.Server().Status().Control.Refused < n {
		if time.Now().After(deadline) {
			t.Fatalf("server refused %d control messages, want %d: %+v", e.Server().Status().Control.Refused, n, e.Server().Status().Control)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdShiftDrag presses the left button at pt and Shift on the page, as in
// the middle of a shift-drag, and waits until both are down on the screen.
// It returns the keycode Shift went down with.
func (p *controlPage) holdShiftDrag(t *testing.T, rec *testenv.Recorder, pt image.Point) byte {
	t.Helper()
	x, y := p.page(pt)
	p.mouse(t, chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(1))
	if _, err := chromedp.Call(p.ctx, input.DispatchKeyEvent, *kb.Encode([]rune(kb.Shift)[0])[0]); err != nil {
		t.Fatalf("Shift down: %v", err)
	}
	var shift byte
	m := rec.Keysyms(t)
	rec.Until(t, 5*time.Second, 200*time.Millisecond, func(evs []testenv.InputEvent) bool {
		pressed := false
		for _, e := range evs {
			switch {
			case e.Kind == "press" && e.Detail == 1 && screenDist(e.Pt(), pt) <= maxErrPx:
				pressed = true
			case e.Kind == "keydown" && testenv.KeysymOf(m, e) == 0xffe1: // Shift_L
				shift = e.Detail
			case e.Kind == "motion":
			default:
				t.Fatalf("unexpected %v while pressing the button and Shift (%v)", e, evs)
			}
		}
		return pressed && shift != 0
	})
	return shift
}

// letGo waits until the screen sees button 1 and the Shift keycode released,
// in either order, and nothing else.
func letGo(t *testing.T, rec *testenv.Recorder, shift byte, why string, start time.Time) {
	t.Helper()
	var took time.Duration
	evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, func(evs []testenv.InputEvent) bool {
		took = time.Since(start)
		return len(evs) >= 2
	})
	got := map[string]bool{}
	for _, e := range evs {
		got[fmt.Sprintf("%s %d", e.Kind, e.Detail)] = true
	}
	if len(evs) != 2 || !got["release 1"] || !got[fmt.Sprintf("keyup %d", shift)] {
		t.Fatalf("%s: events %v, want button 1 and Shift (keycode %d) let go", why, evs, shift)
	}
	t.Logf("%s: button and Shift let go on the screen within %v", why, took.Round(time.Millisecond))
}

// TestControlRefused: without a grant, after the grant is taken back, with
// a wrong token and with control off, the same input reaches nothing on
// the screen, not even the pointer's motion.
func TestControlRefused(t *testing.T) {
	checkLeaks(t)
	rec := controlX(t)
	on := engine.Settings{FPS: 30, Quality: 80, Control: access.ControlGrant}

	t.Run("not granted", func(t *testing.T) {
		p := openControl(t, on, 800, 600)
		time.Sleep(300 * time.Millisecond) // past a recheck of the (absent) grant
		if eval[bool](t, p.ctx, "window.deskcast.control.granted || !document.getElementById('control-banner').hidden") {
			t.Fatal("the page thinks it has control")
		}
		p.actions(t)
		n := p.rawControl(t)
		waitRefused(t, p.e, uint64(n))
		noInput(t, rec, time.Second)
		if st := p.e.Server().Status().Control; st.Events != 0 || st.Controller != "" {
			t.Fatalf("control status %+v: want nothing injected and no controller", st)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		p := openControl(t, on, 800, 600)
		p.grant(t)
		pt := p.at(0.5, 0.5)
		p.clickAt(t, pt, input.MouseButtonLeft, 1)
		checkButtons(t, rec.Until(t, 5*time.Second, 200*time.Millisecond, nButtons(2)), p.area, clickOf(1, pt)...)
		shift := p.holdShiftDrag(t, rec, p.at(0.3, 0.3))
		events := p.e.Server().Status().Control.Events

		start := time.Now()
		p.e.Revoke(p.id)
		letGo(t, rec, shift, "revoked mid-drag", start) // nothing stays stuck
		// Before the page has heard: the server refuses what the page still sends.
		n := p.rawControl(t)
		waitRefused(t, p.e, uint64(n))
		noInput(t, rec, 300*time.Millisecond)
		waitJS(t, p.ctx, 5*time.Second, "document.getElementById('control-banner').hidden && !window.deskcast.control.granted")
		t.Logf("banner hidden %v after Revoke (the checks above included)", time.Since(start).Round(time.Millisecond))
		if vs, _ := p.e.Server().Viewers(); len(vs) != 1 || vs[0].Control {
			t.Fatalf("viewers %+v: want one without control", vs)
		}
		// The page lets go of the button and Shift it held; then the rest.
		x, y := p.page(p.at(0.6, 0.6))
		p.mouse(t, chromedp.MouseMoved, x, y, chromedp.ButtonLeft, heldButtons(1))
		p.mouse(t, chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1), heldButtons(0))
		if _, err := chromedp.Call(p.ctx, input.DispatchKeyEvent, *kb.Encode([]rune(kb.Shift)[0])[1]); err != nil {
			t.Fatalf("Shift up: %v", err)
		}
		p.actions(t)
		noInput(t, rec, time.Second)
		if st := p.e.Server().Status().Control; st.Events != events || st.Controller != "" {
			t.Fatalf("control status %+v: want %d events as before the revoke, and no controller", st, events)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		e, base := startEngine(t, on)
		ctx := testenv.Browser(t, 800, 600)
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 600), chromedp.Navigate(base+"/?t=wrong"+token)); err != nil {
			t.Fatal(err)
		}
		if eval[bool](t, ctx, "!!window.deskcast || !!document.getElementById('screen')") {
			t.Fatalf("a wrong token got the viewer page: %q at %s", eval[string](t, ctx, "document.title + ' / ' + document.body.innerText"), eval[string](t, ctx, "location.href"))
		}
		p := &controlPage{e: e, base: base, ctx: ctx, vw: 800, vh: 600, area: image.Rect(0, 0, ctlScreenW, ctlScreenH)}
		p.actions(t)
		if n := p.rawControl(t); n != -1 {
			t.Fatalf("the page opened /ws/control with a wrong token and sent %d messages", n)
		}
		noInput(t, rec, time.Second)

		// From outside a browser: refused before any WebSocket.
		for _, q := range []string{"?t=wrong" + token, "", "?t="} {
			dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			c, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/control"+q, nil)
			cancel()
			if err == nil {
				c.CloseNow()
				t.Fatalf("/ws/control%s: connected", q)
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("/ws/control%s: %v, %v; want 401", q, err, resp)
			}
		}
		if vs, _ := e.Server().Viewers(); len(vs) != 0 {
			t.Fatalf("viewers %+v after wrong tokens only", vs)
		}
		if st := e.Server().Status().Control; st.Events+st.Refused+st.Malformed != 0 {
			t.Fatalf("control status %+v: nothing should have reached the control socket", st)
		}
	})

	t.Run("control off", func(t *testing.T) {
		p := openControl(t, engine.Settings{FPS: 30, Quality: 80}, 800, 600)
		waitJS(t, p.ctx, 5*time.Second, "!!window.deskcast.picture.status") // the page has read a status
		time.Sleep(1200 * time.Millisecond)                                 // and the next one
		if !eval[bool](t, p.ctx, "window.deskcast.control.ws === null && document.getElementById('control-banner').hidden") {
			t.Fatal("with control off the page opened /ws/control or shows the banner")
		}
		// Its picture and the presenter's pointer (on by default), no control socket.
		if vs, _ := p.e.Server().Viewers(); len(vs) != 1 || vs[0].Streams != 2 {
			t.Fatalf("viewers %+v: want one with its picture's and its pointer's streams alone open", vs)
		}
		if err := p.e.Grant(p.id); err == nil {
			t.Fatal("Grant with control off: no error")
		}
		p.actions(t)
		n := p.rawControl(t) // a socket of its own: the server still refuses
		waitRefused(t, p.e, uint64(n))
		noInput(t, rec, time.Second)
		if st := p.e.Server().Status().Control; st.Events != 0 || st.Mode != access.ControlOff {
			t.Fatalf("control status %+v", st)
		}
	})
}

// TestControlViewerLeavesMidDrag: a viewer whose page goes away while it
// holds a button and a key leaves nothing stuck on the presenter's desktop.
func TestControlViewerLeavesMidDrag(t *testing.T) {
	checkLeaks(t)
	rec := controlX(t)
	p := openControl(t, engine.Settings{FPS: 30, Quality: 80, Control: access.ControlGrant}, 800, 600)
	p.grant(t)
	shift := p.holdShiftDrag(t, rec, p.at(0.4, 0.6))
	start := time.Now()
	if err := chromedp.Do(p.ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	letGo(t, rec, shift, "page left mid-drag", start)
	noInput(t, rec, 500*time.Millisecond)
}
