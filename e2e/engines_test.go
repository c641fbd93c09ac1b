package e2e

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// tab is what the engine tests need of a browser tab: testenv's Firefox
// (WebDriver BiDi) and WebKit (classic WebDriver) clients both have it.
type tab interface {
	Navigate(url string) error
	Eval(expr string) (json.RawMessage, error)
	Screenshot() (image.Image, error)
	Click(selector string) error
	ClickAt(x, y int) error
	Type(selector, text string) error
	ConsoleErrors() []string
}

// engines are the browser engines besides Chromium (whose tests use chromedp
// directly). cannot names the checks an engine cannot do, and why.
var engines = []struct {
	name   string
	open   func(t *testing.T, w, h int) tab
	webRTC bool // whether the engine has RTCPeerConnection
	cannot map[string]string
}{
	{"Firefox", func(t *testing.T, w, h int) tab { return testenv.Firefox(t, w, h) }, true, nil},
	{"WebKitGTK", func(t *testing.T, w, h int) tab { return testenv.WebKit(t, w, h) }, false, nil},
}

// value evaluates js in p and decodes its value into a T.
func value[T any](t *testing.T, p tab, js string) T {
	t.Helper()
	raw, err := p.Eval(js)
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("evaluate %q: %s: %v", js, raw, err)
	}
	return v
}

// until evaluates js until it is true; errors count as false (a page
// between two documents, after a form's submit, cannot answer).
func until(t *testing.T, p tab, within time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		var raw json.RawMessage
		if raw, err = p.Eval(js); err == nil && string(raw) == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the page never showed %s within %v (%s; last error %v)", what, within, js, err)
}

// shows takes screenshots until every point shows its colour.
func shows(t *testing.T, p tab, within time.Duration, points map[image.Point]color.RGBA) time.Duration {
	t.Helper()
	start := time.Now()
	var last image.Image
	for time.Since(start) < within {
		img, err := p.Screenshot()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		last = img
		ok := true
		for pt, c := range points {
			ok = ok && near(img.At(pt.X, pt.Y), c)
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got []string
	for pt, c := range points {
		got = append(got, fmt.Sprintf("%v: %v (want %v)", pt, last.At(pt.X, pt.Y), c))
	}
	saveScreenshot(t, strings.ReplaceAll(t.Name(), "/", "_")+".png", last)
	t.Fatalf("page did not show the colours within %v (screenshot %v): %s", within, last.Bounds(), strings.Join(got, ", "))
	return 0
}

// fitIn is fit for a tab: it maps a point of the w×h screen to the page.
func fitIn(t *testing.T, p tab, w, h int) func(x, y int) image.Point {
	vw := value[float64](t, p, "window.innerWidth")
	vh := value[float64](t, p, "window.innerHeight")
	s := min(vw/float64(w), vh/float64(h))
	ox, oy := (vw-s*float64(w))/2, (vh-s*float64(h))/2
	return func(x, y int) image.Point {
		return image.Pt(int(ox+s*float64(x)), int(oy+s*float64(y)))
	}
}

// TestEngines runs the viewer page's checks in Firefox ESR and WebKitGTK:
// the PIN page, the MJPEG picture (colours at their places, following a
// change), the stats overlay, sound, and whether WebRTC is there at all.
func TestEngines(t *testing.T) {
	for _, en := range engines {
		t.Run(en.name, func(t *testing.T) {
			checkLeaks(t)
			start := time.Now()
			t.Setenv("XDG_SESSION_TYPE", "x11") // for the app's input injection
			t.Setenv("WAYLAND_DISPLAY", "")
			x := testenv.StartX(t, ctlScreenW, ctlScreenH)
			rec := x.Record(t)
			x.Fill(red)
			sink := testenv.NewSink(t)
			sink.Play(testenv.Tone(440, 0.5, 90*time.Second))
			base, _ := headless(t, "--pin", "4821", "--audio", "pulse:"+sink.Monitor(), "--fps", "30", "--control=all")
			p := en.open(t, 800, 600)
			t.Logf("%s started in %v", en.name, time.Since(start).Round(time.Millisecond))

			var at func(x, y int) image.Point
			checks := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"PIN", func(t *testing.T) {
					if err := p.Navigate(base + "/?t=" + token); err != nil {
						t.Fatal(err)
					}
					heading := "document.querySelector('h1') ? document.querySelector('h1').textContent : ''"
					if h := value[string](t, p, heading); h != "Enter the PIN" {
						t.Fatalf("link opens %q, want the PIN page", h)
					}
					if err := p.Type(`input[name="pin"]`, "1111\uE007"); err != nil {
						t.Fatal(err)
					}
					until(t, p, 5*time.Second, "the wrong-PIN alert",
						`((document.querySelector('[role=alert]')||{}).textContent||'').indexOf('wrong PIN') >= 0`)
					if err := p.Type(`input[name="pin"]`, "4821\uE007"); err != nil {
						t.Fatal(err)
					}
					until(t, p, 5*time.Second, "the viewer page", `!!document.getElementById('screen') && !!window.deskcast`)
					if href := value[string](t, p, "location.href"); strings.Contains(href, token) || strings.Contains(href, "4821") {
						t.Errorf("address bar %q holds the token or the PIN", href)
					}
				}},
				{"picture", func(t *testing.T) {
					at = fitIn(t, p, 640, 480)
					d := shows(t, p, 10*time.Second, map[image.Point]color.RGBA{at(320, 240): red})
					t.Logf("first picture after %v", d.Round(time.Millisecond))
					paintQuadrants(t, x)
					shows(t, p, 5*time.Second, map[image.Point]color.RGBA{
						at(160, 120): red, at(480, 120): green, at(160, 360): blue, at(480, 360): white,
						at(316, 236): red, at(324, 236): green, at(316, 244): blue, at(324, 244): white,
					})
					for _, c := range []color.RGBA{blue, green} {
						x.Fill(c)
						d := shows(t, p, 5*time.Second, map[image.Point]color.RGBA{at(320, 240): c})
						t.Logf("showed %v %v after the screen changed (screenshot polling included)", c, d.Round(time.Millisecond))
					}
				}},
				{"remote control pointer", func(t *testing.T) {
					until(t, p, 5*time.Second, "the control banner", "!document.getElementById('control-banner').hidden")
					rec.Drain()
					pt := image.Pt(480, 360)
					if err := p.ClickAt(at(pt.X, pt.Y).X, at(pt.X, pt.Y).Y); err != nil {
						t.Fatal(err)
					}
					evs := rec.Until(t, 5*time.Second, 300*time.Millisecond, nButtons(2))
					checkButtons(t, evs, image.Rect(0, 0, ctlScreenW, ctlScreenH), clickOf(1, pt)...)
				}},
				{"stats overlay", func(t *testing.T) {
					if err := p.Click("#btn-stats"); err != nil {
						t.Fatal(err)
					}
					until(t, p, 5*time.Second, "the stats overlay", `(function(){var s=document.getElementById('stats');
						return !s.hidden && s.textContent.indexOf('640×480') >= 0 && s.textContent.indexOf('fps') >= 0 &&
						s.textContent.indexOf('viewers    1') >= 0 && s.textContent.indexOf('latency') >= 0})()`)
					if err := p.Click("#btn-stats"); err != nil { // hide it again
						t.Fatal(err)
					}
				}},
				{"sound", func(t *testing.T) {
					until(t, p, 10*time.Second, "the sound button", `!document.getElementById('sound').hidden && !document.getElementById('btn-sound').hidden`)
					if err := p.Click("#btn-sound"); err != nil {
						t.Fatal(err)
					}
					until(t, p, 15*time.Second, "a 440 Hz peak in the page's analyser", `Math.abs(window.deskcast.peakHz() - 440) < 20`)
					st := value[map[string]any](t, p, `({state: window.deskcast.audio.ctx.state, underruns: window.deskcast.audio.underruns,
						chunks: window.deskcast.audio.chunks, via: window.deskcast.audio.via, transport: window.deskcast.picture.transport,
						rtcAudio: !!(window.deskcast.picture.status.webrtc || {}).audio})`)
					t.Logf("page audio: %v", st)
					// Where the picture comes over WebRTC and the server sends the sound there, so does the sound (Opus).
					if st["transport"] == "webrtc" && st["rtcAudio"] == true {
						if st["via"] != "webrtc" {
							t.Errorf("sound via %v beside a WebRTC picture, want the session's Opus track", st["via"])
						}
						until(t, p, 5*time.Second, "getStats saying audio/opus",
							`!!window.deskcast.rtc.audioStats && window.deskcast.rtc.audioStats.codec === 'audio/opus'`)
					}
				}},
				{"WebRTC", func(t *testing.T) {
					has := value[bool](t, p, "typeof RTCPeerConnection === 'function'")
					if has != en.webRTC {
						t.Fatalf("RTCPeerConnection there: %v, want %v", has, en.webRTC)
					}
					if !has {
						t.Logf("%s has no RTCPeerConnection: it can only watch MJPEG (the WebRTC fallback's case)", en.name)
						return
					}
					// Firefox offers no H.264 (without its plugin): it must get
					// the second codec, VP8, and decode frames of it.
					deadline := time.Now().Add(10 * time.Second)
					for {
						got := value[string](t, p, "(window.deskcast.picture.transport || '') + ' ' + "+
							"((window.deskcast.rtc.stats || {}).codec || '') + ' ' + ((window.deskcast.rtc.stats || {}).framesDecoded || 0)")
						f := strings.Fields(got)
						if len(f) == 3 && f[0] == "webrtc" && f[1] == "vp8" && f[2] != "0" {
							t.Logf("%s plays WebRTC/VP8: %s frames decoded", en.name, f[2])
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("%s: transport, codec, frames decoded = %q; want webrtc vp8 and frames (why: %s)", en.name, got,
								value[string](t, p, "window.deskcast.picture.why || ''"))
						}
						time.Sleep(200 * time.Millisecond)
					}
					// Changes reach the <video>: the change→paint latency, as
					// Chromium's WebRTC test measures it (polling included).
					var lat []time.Duration
					for _, c := range []color.RGBA{red, white, blue, green, red, white} {
						x.Fill(c)
						lat = append(lat, videoIn(t, p, 5*time.Second, c).Round(time.Millisecond))
					}
					slices.Sort(lat)
					t.Logf("%s: change→paint over WebRTC/VP8 %v (median %v; polling included)", en.name, lat, lat[len(lat)/2])
					if med := lat[len(lat)/2]; med > time.Second {
						t.Errorf("%s: median change→paint %v over WebRTC, want well under 1 s", en.name, med)
					}
					// Two seconds of a changing screen, then no frame may be
					// dropped of what was decoded.
					for i := range 20 {
						x.Fill([]color.RGBA{red, green, blue, white}[i%4])
						time.Sleep(100 * time.Millisecond)
					}
					dropped(t, p, en.name)
				}},
				{"no console errors", func(t *testing.T) {
					if errs := p.ConsoleErrors(); len(errs) > 0 {
						t.Fatalf("the page logged errors: %q", errs)
					}
					// An error of the test's own shows that errors are seen at all.
					if _, err := p.Eval("setTimeout(function () { throw new Error('deskcast-probe') }, 0)"); err != nil {
						t.Fatal(err)
					}
					deadline := time.Now().Add(5 * time.Second)
					for !strings.Contains(strings.Join(p.ConsoleErrors(), "\n"), "deskcast-probe") {
						if time.Now().After(deadline) {
							t.Fatalf("a thrown error never reached ConsoleErrors (%q)", p.ConsoleErrors())
						}
						time.Sleep(50 * time.Millisecond)
					}
				}},
			}
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					if why := en.cannot[c.name]; why != "" {
						t.Skipf("%s cannot: %s", en.name, why)
					}
					c.run(t)
				})
			}
			t.Logf("%s: all checks in %v", en.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// videoIn samples the page's <video> at its centre into a canvas until it
// shows c, and returns how long that took.
func videoIn(t *testing.T, p tab, within time.Duration, c color.RGBA) time.Duration {
	t.Helper()
	const js = `(function () {
		var v = document.getElementById('video');
		if (!v || !v.videoWidth) return [];
		var cv = document.createElement('canvas');
		cv.width = v.videoWidth; cv.height = v.videoHeight;
		var g = cv.getContext('2d');
		g.drawImage(v, 0, 0);
		var d = g.getImageData(cv.width >> 1, cv.height >> 1, 1, 1).data;
		return [d[0], d[1], d[2]];
	})()`
	start := time.Now()
	var got []uint8
	for time.Since(start) < within {
		got = value[[]uint8](t, p, js)
		if len(got) == 3 && near(color.RGBA{got[0], got[1], got[2], 255}, c) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the <video> shows %v at its centre after %v, want %v", got, within, c)
	return 0
}

// dropped checks that the browser decoded the frames of a changing screen
// and dropped none, in its own stats (which must report framesDropped at
// all: the page reads a missing one as 0) and in the page's overlay.
func dropped(t *testing.T, p tab, name string) {
	t.Helper()
	if _, err := p.Eval(`(window.deskcastInbound = null, window.deskcast.rtc.pc.getStats().then(function (r) {
		r.forEach(function (s) {
			if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') window.deskcastInbound = s;
		});
	}), true)`); err != nil {
		t.Fatal(err)
	}
	until(t, p, 5*time.Second, "the inbound video's stats", "!!window.deskcastInbound")
	in := value[map[string]any](t, p, "window.deskcastInbound")
	t.Logf("%s's inbound video: %v frames decoded, %v dropped, %v received, %v packets lost, %v NACKs", name,
		in["framesDecoded"], in["framesDropped"], in["framesReceived"], in["packetsLost"], in["nackCount"])
	fd, ok := in["framesDropped"].(float64)
	if !ok {
		t.Errorf("%s reports no framesDropped in its inbound-rtp stats: the overlay's 0 would mean nothing", name)
	}
	decoded, _ := in["framesDecoded"].(float64)
	if decoded < 10 {
		t.Errorf("%s decoded %v frames of a screen changing ten times a second for 2 s", name, decoded)
	}
	if fd > 0 {
		t.Errorf("%s dropped %v frames", name, fd)
	}
	// The page reads its stats once a second: once it has these, its
	// overlay must say the same.
	until(t, p, 5*time.Second, "the page's stats catching up",
		fmt.Sprintf("!!window.deskcast.rtc.stats && window.deskcast.rtc.stats.framesDecoded >= %d", int(decoded)))
	txt := value[string](t, p, `(function () {
		var s = document.getElementById('stats');
		if (s.hidden) window.deskcast.stats.toggle();
		var txt = s.textContent;
		window.deskcast.stats.toggle();
		return txt;
	})()`)
	if want := fmt.Sprintf("dropped    %d frames", int(fd)); !strings.Contains(txt, want) || !strings.Contains(txt, "transport  WebRTC") {
		t.Errorf("%s: stats overlay %q, want WebRTC and %q", name, txt, want)
	}
}
