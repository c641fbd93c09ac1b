package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

// consoleErrors collects the page's console errors and uncaught exceptions
// (a CSP violation is one) from now on.
func consoleErrors(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var got []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				got = append(got, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

type rtcStatus struct {
	Available bool     `json:"available"`
	Why       string   `json:"why"`
	Sessions  int      `json:"sessions"`
	Codecs    []string `json:"codecs"`
	Audio     string   `json:"audio"`
}

// waitSessions waits until the server holds n WebRTC sessions.
func waitSessions(t *testing.T, base string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		w := webrtcStatus(t, base)
		if w != nil && w.Sessions == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webrtc status %+v, want %d sessions", w, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onNewDocument runs js in the page before its own scripts.
func onNewDocument(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	})
}

// webrtcStatus is the server's "webrtc" field in /api/status (nil without it).
func webrtcStatus(t *testing.T, base string) *rtcStatus {
	t.Helper()
	resp, err := http.Get(base + "/api/status?t=" + token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		WebRTC *rtcStatus `json:"webrtc"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.WebRTC
}

// statsText opens the stats overlay (once) and returns its text.
func statsText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `(function () {
		var s = document.getElementById('stats');
		if (s.hidden) window.deskcast.stats.toggle();
		return s.textContent;
	})()`)
}

// waitStats waits until the overlay holds every one of want.
func waitStats(t *testing.T, ctx context.Context, within time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		txt := statsText(t, ctx)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(txt, w)
		}
		if ok {
			return txt
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats overlay = %q, want %q", txt, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openPage opens the viewer page at base+path in a fresh 800×600 Chromium;
// setup runs before the page loads.
func openPage(t *testing.T, base, path string, setup ...chromedp.Action[chromedp.Void]) (context.Context, func() []string) {
	t.Helper()
	ctx := testenv.Browser(t, 800, 600)
	errs := consoleErrors(t, ctx)
	steps := append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(800, 600)}, setup...)
	if err := chromedp.Do(ctx, append(steps, chromedp.Navigate(base+path))...); err != nil {
		t.Fatal(err)
	}
	return ctx, errs
}

func noConsoleErrors(t *testing.T, errs func() []string) {
	t.Helper()
	if e := errs(); len(e) > 0 {
		t.Errorf("console errors: %q", e)
	}
}

// mjpegShown checks that the page shows the MJPEG <img> and no <video>.
const mjpegShown = `(function () {
	var img = document.getElementById('screen');
	return window.deskcast.picture.transport === 'mjpeg' && !!img.getAttribute('src') &&
		img.naturalWidth > 0 && !document.getElementById('video');
})()`

// TestWebRTCFallbackWithoutPeerConnection: a browser without
// RTCPeerConnection (like WebKitGTK and many TV browsers) gets the MJPEG
// picture within ~3 s, and the stats say why.
func TestWebRTCFallbackWithoutPeerConnection(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(red)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	w := webrtcStatus(t, base)
	t.Logf("server's webrtc status: %+v", w)
	noRTC := onNewDocument(`delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;`)
	start := time.Now()
	ctx, errs := openPage(t, base, "/?t="+token, noRTC)
	if eval[bool](t, ctx, "'RTCPeerConnection' in window") {
		t.Fatal("RTCPeerConnection still there")
	}
	centre := fit(t, ctx, 640, 480)(320, 240)
	waitPage(t, ctx, 3*time.Second-time.Since(start), map[image.Point]color.RGBA{centre: red})
	t.Logf("MJPEG picture %v after the page was opened", time.Since(start).Round(time.Millisecond))
	waitJS(t, ctx, time.Second, mjpegShown)
	why := "not offered by this server"
	if w != nil && w.Available {
		why = "no RTCPeerConnection in this browser"
	} else if w != nil {
		why = w.Why
	}
	waitStats(t, ctx, 3*time.Second, "transport  MJPEG (WebRTC: "+why+")", "640×480")
	x.Fill(blue)
	waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: blue})
	noConsoleErrors(t, errs)

	t.Run("forced WebRTC does not fall back", func(t *testing.T) {
		if w == nil || !w.Available {
			t.Skip("the server offers no WebRTC")
		}
		ctx, _ := openPage(t, base, "/?transport=webrtc&t="+token, noRTC)
		waitCard(t, ctx, "No picture over WebRTC")
		if eval[bool](t, ctx, "!!document.getElementById('screen').getAttribute('src')") {
			t.Error("MJPEG opened though ?transport=webrtc")
		}
	})
}

// TestWebRTCFallbackWhenItFails: a session that cannot connect (no ICE
// candidate either way, as when the media ports are blocked) falls back to
// MJPEG after ~3 s; so does a refused offer. The server's session ends
// (DELETE) in both cases, and when the page goes away.
func TestWebRTCFallbackWhenItFails(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	if w := webrtcStatus(t, base); w == nil || !w.Available {
		t.Skipf("the server offers no WebRTC: %+v", w)
	}
	for _, c := range []struct{ name, js, why string }{
		{"not connected", `(function () {
			var strip = function (sdp) { return sdp.replace(/a=candidate:[^\r\n]*\r?\n/g, ''); };
			var send = XMLHttpRequest.prototype.send;
			XMLHttpRequest.prototype.send = function (b) { return send.call(this, typeof b === 'string' ? strip(b) : b); };
			var srd = RTCPeerConnection.prototype.setRemoteDescription;
			RTCPeerConnection.prototype.setRemoteDescription = function (d) {
				return srd.call(this, {type: d.type, sdp: strip(d.sdp)});
			};
		})()`, "not connected within 3 s"},
		{"offer refused", `(function () {
			var send = XMLHttpRequest.prototype.send;
			XMLHttpRequest.prototype.send = function (b) { return send.call(this, typeof b === 'string' ? 'v=0\r\nnonsense\r\n' : b); };
		})()`, "POST /whep: 400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			ctx, errs := openPage(t, base, "/?t="+token, onNewDocument(c.js))
			centre := fit(t, ctx, 640, 480)(320, 240)
			waitJS(t, ctx, 5*time.Second, mjpegShown)
			waitPage(t, ctx, 2*time.Second, map[image.Point]color.RGBA{centre: green})
			t.Logf("MJPEG picture %v after the page was opened", time.Since(start).Round(time.Millisecond))
			waitStats(t, ctx, 3*time.Second, "transport  MJPEG (WebRTC: "+c.why)
			waitSessions(t, base, 0, 3*time.Second)
			// Still MJPEG a while later: the page does not try again by itself.
			time.Sleep(1500 * time.Millisecond)
			waitJS(t, ctx, time.Second, mjpegShown)
			_ = errs // the refused POST logs a 400 in the console, as any failed request does
		})
	}
	t.Run("leaving ends the session", func(t *testing.T) {
		ctx, errs := openPage(t, base, "/?t="+token)
		waitJS(t, ctx, 5*time.Second, "window.deskcast.rtc.playing")
		waitSessions(t, base, 1, 2*time.Second)
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatal(err)
		}
		waitSessions(t, base, 0, 3*time.Second)
		noConsoleErrors(t, errs)
	})
}

// TestWebRTCForcedMJPEG: ?transport=mjpeg keeps to MJPEG, and so does the
// compatibility mode button, which the browser remembers.
func TestWebRTCForcedMJPEG(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	w := webrtcStatus(t, base)
	ctx, errs := openPage(t, base, "/?transport=mjpeg&t="+token)
	centre := fit(t, ctx, 640, 480)(320, 240)
	waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: green})
	waitJS(t, ctx, time.Second, mjpegShown)
	waitStats(t, ctx, 3*time.Second, "transport  MJPEG (WebRTC: off by ?transport=mjpeg)")
	noConsoleErrors(t, errs)

	if w == nil || !w.Available {
		t.Logf("the server offers no WebRTC (%+v): the compatibility mode button stays hidden", w)
		if !eval[bool](t, ctx, "document.getElementById('btn-compat').hidden") {
			t.Error("compatibility mode button shown though the server offers no WebRTC")
		}
		return
	}
	t.Run("compatibility mode", func(t *testing.T) {
		ctx, errs := openPage(t, base, "/?t="+token)
		waitJS(t, ctx, 5*time.Second, "window.deskcast.rtc.playing")
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-compat"))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, mjpegShown)
		waitStats(t, ctx, 3*time.Second, "transport  MJPEG (WebRTC: off in compatibility mode)")
		waitSessions(t, base, 0, 3*time.Second)
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, mjpegShown)
		if !eval[bool](t, ctx, "document.getElementById('btn-compat').getAttribute('aria-pressed') === 'true'") {
			t.Error("compatibility mode not remembered across a reload")
		}
		// And off again: WebRTC comes back.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-compat"))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 5*time.Second, "window.deskcast.rtc.playing && !!document.getElementById('video')")
		noConsoleErrors(t, errs)
	})
}

// videoPixels samples the <video> into a canvas at fractions of its size and
// returns the colours there.
func videoPixels(t *testing.T, ctx context.Context, at [][2]float64) []color.RGBA {
	t.Helper()
	pts, _ := json.Marshal(at)
	js := fmt.Sprintf(`(function (pts) {
		var v = document.getElementById('video');
		if (!v || !v.videoWidth) return [];
		var c = document.createElement('canvas');
		c.width = v.videoWidth; c.height = v.videoHeight;
		var g = c.getContext('2d');
		g.drawImage(v, 0, 0);
		return pts.map(function (p) {
			var d = g.getImageData(Math.floor(p[0] * c.width), Math.floor(p[1] * c.height), 1, 1).data;
			return [d[0], d[1], d[2]];
		});
	})(%s)`, pts)
	raw := eval[[][3]uint8](t, ctx, js)
	out := make([]color.RGBA, len(raw))
	for i, p := range raw {
		out[i] = color.RGBA{p[0], p[1], p[2], 255}
	}
	return out
}

// waitVideo waits until the <video> shows each colour at its point.
func waitVideo(t *testing.T, ctx context.Context, within time.Duration, at [][2]float64, want []color.RGBA) time.Duration {
	t.Helper()
	start := time.Now()
	var got []color.RGBA
	for time.Since(start) < within {
		got = videoPixels(t, ctx, at)
		ok := len(got) == len(want)
		for i := 0; ok && i < len(want); i++ {
			ok = near(got[i], want[i])
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("video shows %v at %v, want %v", got, at, want)
	return 0
}

// TestWebRTCPlaysH264: Chromium plays the screen as H.264 over WebRTC, the
// colours at the right places, following changes; the stats say so.
func TestWebRTCPlaysH264(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(red)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	if w := webrtcStatus(t, base); w == nil || !w.Available {
		t.Skipf("the server offers no WebRTC: %+v", w)
	}
	start := time.Now()
	ctx, errs := openPage(t, base, "/?t="+token)
	waitJS(t, ctx, 5*time.Second, "window.deskcast.rtc.playing && !!document.getElementById('video')")
	t.Logf("first WebRTC frame %v after the page was opened", time.Since(start).Round(time.Millisecond))
	if eval[bool](t, ctx, "!!document.getElementById('screen').getAttribute('src')") {
		t.Error("the MJPEG stream is open beside WebRTC")
	}
	centre := [][2]float64{{0.5, 0.5}}
	waitVideo(t, ctx, 5*time.Second, centre, []color.RGBA{red})
	// And on the page itself, where the <video> is fitted.
	waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{fit(t, ctx, 640, 480)(320, 240): red})

	for _, c := range []color.RGBA{blue, green, white} {
		x.Fill(c)
		d := waitVideo(t, ctx, 5*time.Second, centre, []color.RGBA{c})
		t.Logf("video showed %v %v after the screen changed (polling included)", c, d.Round(time.Millisecond))
	}
	paintQuadrants(t, x)
	waitVideo(t, ctx, 5*time.Second,
		[][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}},
		[]color.RGBA{red, green, blue, white})

	txt := waitStats(t, ctx, 5*time.Second, "transport  WebRTC\n", "codec      h264", "decoded ")
	t.Logf("stats overlay:\n%s", txt)
	st := eval[map[string]any](t, ctx, "window.deskcast.rtc.stats")
	if st["codec"] != "h264" || st["framesDecoded"].(float64) < 2 {
		t.Errorf("rtc stats = %v, want h264 with frames decoded", st)
	}
	if d := st["framesDropped"].(float64); d > 0 {
		t.Errorf("%v frames dropped", d)
	}
	noConsoleErrors(t, errs)
}
