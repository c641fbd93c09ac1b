package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// BenchmarkWebRTC1080p measures the real binary sharing a busy 1920×1080
// desktop at --fps 30 (testenv.Busy: a window dragged across it and a video
// playing in a corner) over MJPEG and over WebRTC, side by side, in a room
// of network namespaces: the server in one, the light viewers in another
// behind a 100 Mbit/s tbf link, Chromium behind a link of its own, and one
// viewer on a 2 Mbit/s link. For each transport:
//
//   - glass-to-glass in Chromium: a marker painted at t0, seen in the page
//     by requestVideoFrameCallback (WebRTC) or each animation frame (MJPEG)
//     and a canvas sample of the picture; and time to first picture;
//   - with 1, 10 and 30 light viewers (pion WHEP clients that do not decode,
//     or MJPEG readers): the server's CPU (/proc), fps, bitrate, and for
//     WebRTC their latency by the sender's RTCP reports;
//   - bitrate and CPU on a still screen, Y-PSNR of received frames against
//     the painted screen;
//   - 30 viewers joining one a second, and one viewer on 2 Mbit/s among 30.
//
// It reports figures, with no pass/fail thresholds, and prints them as a
// Markdown table with the targets. Run with `make bench`; it needs root.
func BenchmarkWebRTC1080p(b *testing.B) {
	x := testenv.StartX(b, 1920, 1080)
	busy := x.StartBusy(b, 1)
	n := testenv.NewNet(b)
	room := n.AddViewers(b, "100mbit")
	slow := n.AddViewers(b, "2mbit")
	page := n.AddViewers(b, "100mbit")
	const port = 8080
	srv := startServerIn(b, n.Server, "--listen", fmt.Sprintf(":%d", port), "--token", token,
		"--fps", "30", "--quality", "70", "--max-viewers", "-1")
	r := &benchRoom{b: b, busy: busy, room: room, slow: slow, page: page, port: port, proc: procStats{pid: srv.Pid}}
	mj := r.run("mjpeg")
	rtc := r.run("webrtc")
	report(b, mj, rtc)
}

// benchRoom is the benchmark's set-up: the screen, the links, the server.
type benchRoom struct {
	b                *testing.B
	busy             *testenv.Busy
	room, slow, page *testenv.Link
	port             int
	proc             procStats
}

func (r *benchRoom) base(l *testenv.Link) string {
	return fmt.Sprintf("http://%s:%d", l.ServerIP, r.port)
}

// url is what kind's light viewers on l open.
func (r *benchRoom) url(l *testenv.Link, kind string) string {
	if kind == "webrtc" {
		return r.base(l) + "/whep?t=" + token
	}
	return r.base(l) + "/stream.mjpg?pointer=0&t=" + token // as the page asks for it
}

// phase is the figures of one measure window.
type phase struct {
	cpu            float64 // server, % of one core
	fpsMin, fpsMed float64
	worstSec       float64 // the slowest whole second of any viewer
	kbps           float64 // median viewer
	latMed, latP95 float64 // median of the viewers' medians and p95s, ms
	viewers        int
	ttfp           float64 // median time to first frame of the viewers that joined for it
	ttfpMax        float64
	capMed, capP95 float64 // capture → frame complete (WebRTC, clocks calibrated by marks), ms
	cs             []clientStats
	keyframes      float64 // received per viewer, median (WebRTC)
	reopened       int     // MJPEG streams the server dropped and the viewers opened again
}

// summarize makes a phase of the viewers' figures and the server's CPU
// (NaN when not measured); the times to first frame are the caller's.
func summarize(cs []clientStats, cpu float64) phase {
	p := phase{cpu: cpu, viewers: len(cs), fpsMin: math.NaN(), worstSec: math.NaN(), ttfp: math.NaN(), ttfpMax: math.NaN(),
		capMed: math.NaN(), capP95: math.NaN(), cs: cs}
	var fps, kbps, lm, lp, keys []float64
	for _, c := range cs {
		keys = append(keys, float64(c.Keyframes))
		p.reopened += c.Reopened
		fps = append(fps, c.FPS)
		kbps = append(kbps, c.Kbps)
		lm = append(lm, c.LatMed)
		lp = append(lp, c.LatP95)
		if math.IsNaN(p.fpsMin) || c.FPS < p.fpsMin {
			p.fpsMin = c.FPS
		}
		if math.IsNaN(p.worstSec) || c.WorstFPS < p.worstSec {
			p.worstSec = c.WorstFPS
		}
	}
	p.fpsMed, p.kbps, p.latMed, p.latP95, p.keyframes = median(fps), median(kbps), median(lm), median(lp), median(keys)
	return p
}

// log writes p's figures on one line ("–" for those it does not have).
func (p phase) log(b *testing.B, kind, what string) {
	f := func(format string, v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	b.Logf("%s %-26s %2d viewers  cpu %s%%  fps min %s median %s (slowest second %s)  %s kbit/s  "+
		"capture→complete %s / %s ms  SR latency %s / %s ms  keyframes %s  reopened %d  first frame %s / %s ms",
		kind, what, p.viewers, f("%.1f", p.cpu), f("%.1f", p.fpsMin), f("%.1f", p.fpsMed), f("%.0f", p.worstSec),
		f("%.1f", p.kbps), f("%.1f", p.capMed), f("%.1f", p.capP95), f("%.1f", p.latMed), f("%.1f", p.latP95), f("%.0f", p.keyframes), p.reopened,
		f("%.0f", p.ttfp), f("%.0f", p.ttfpMax))
}

// measure runs every helper's measure window at once and reads the
// server's CPU over it.
func (r *benchRoom) measure(d time.Duration, hs ...*viewers) (float64, [][]clientStats) {
	out := make([][]clientStats, len(hs))
	errs := make(chan error, len(hs))
	u0, s0 := r.proc.cpuSplit()
	t0 := time.Now()
	for i, h := range hs {
		go func() {
			var err error
			out[i], err = h.measure(d)
			errs <- err
		}()
	}
	for range hs {
		if err := <-errs; err != nil {
			r.b.Fatal(err)
		}
	}
	u1, s1 := r.proc.cpuSplit()
	return (u1 + s1 - u0 - s0) / time.Since(t0).Seconds() * 100, out
}

// results is one transport's figures.
type results struct {
	kind                    string
	g2g                     []float64 // ms
	ttfpOpen, ttfpConn      float64   // median ms: from page open, from the page's request
	one, still, ten, thirty phase
	psnr                    float64
	psnrN                   int
	psnrNote                string
	before, during          phase     // the watchers before and while 30 join, one a second
	joiners                 phase     // ttfp of those joining
	slowOne, others         phase     // the 2 Mbit/s viewer; the 30 others meanwhile
	markOne, markThirty     []float64 // glass-to-receive on a still screen, ms, every viewer's every marker
}

// marked is what marks found for one helper's viewers.
type marked struct {
	g2r []float64 // every viewer's every marker: paint to frame complete, ms
	// clock is each viewer's capture clock: unix ns of its RTP time 0
	// (WebRTC), calibrated by the markers; noClock when there is none.
	clock []int64
}

const noClock = math.MinInt64

// marks stops the motion, paints 10 markers, 400–600 ms apart, and starts
// the motion again. On a still screen the marker's frame is the only one
// sent, so the first frame complete after a paint is the marker's: from
// the paint to it is glass-to-receive, for every light viewer of hs.
//
// It also calibrates each WebRTC viewer's RTP clock, whose 90 kHz time is
// the frame's capture time plus a constant of the session: the marker's
// frame was captured at or after its paint (at the next grab, within a
// frame time), so t0 minus the frame's RTP time is at most the constant, and
// the largest over 10 markers at random phases is within a few ms of it.
// With it, phase.capture gives capture → frame complete on a moving screen.
func (r *benchRoom) marks(hs ...*viewers) []marked {
	b := r.b
	r.busy.Move(false)
	defer r.busy.Move(true)
	time.Sleep(2 * time.Second) // what was sent on the moving screen arrives
	type reply struct {
		cs  []clientStats
		err error
	}
	got := make([]chan reply, len(hs))
	for i, h := range hs {
		got[i] = make(chan reply, 1)
		go func() {
			cs, err := h.measure(6500 * time.Millisecond)
			got[i] <- reply{cs, err}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	var t0s []time.Time
	for i := range 10 {
		t0, err := r.busy.Mark(benchColours[i%len(benchColours)])
		if err != nil {
			b.Fatal(err)
		}
		t0s = append(t0s, t0)
		time.Sleep(time.Duration(400+rand.IntN(200)) * time.Millisecond)
	}
	out := make([]marked, len(hs))
	for h := range hs {
		rep := <-got[h]
		if rep.err != nil {
			b.Fatal(rep.err)
		}
		for _, c := range rep.cs {
			clock := int64(noClock)
			for i, t0 := range t0s {
				end := t0.Add(time.Second)
				if i+1 < len(t0s) {
					end = t0s[i+1]
				}
				for _, f := range c.Frames {
					at := time.Unix(0, f[1])
					if at.After(t0) && at.Before(end) {
						out[h].g2r = append(out[h].g2r, float64(at.Sub(t0).Microseconds())/1000)
						if f[0] != 0 {
							clock = max(clock, t0.UnixNano()-rtpNanos(f[0]))
						}
						break
					}
				}
			}
			out[h].clock = append(out[h].clock, clock)
		}
	}
	return out
}

// rtpNanos is 90 kHz RTP time in nanoseconds.
func rtpNanos(ts int64) int64 { return ts * 1e9 / 90000 }

// capture sets p's capture → frame complete latency from its viewers'
// frames and their calibrated clocks (the viewers in the same order).
func (p *phase) capture(clock []int64) {
	var meds, p95s []float64
	for i, c := range p.cs {
		if i >= len(clock) || clock[i] == noClock {
			continue
		}
		var l []float64
		for _, f := range c.Frames {
			l = append(l, float64(f[1]-clock[i]-rtpNanos(f[0]))/1e6)
		}
		meds = append(meds, median(l))
		p95s = append(p95s, quantile(l, 0.95))
	}
	p.capMed, p.capP95 = median(meds), median(p95s)
}

// run measures one transport, "mjpeg" or "webrtc".
func (r *benchRoom) run(kind string) *results {
	b := r.b
	res := &results{kind: kind}
	r.busy.Move(true)
	start := time.Now()

	// Chromium: first picture and glass-to-glass.
	res.ttfpOpen, res.ttfpConn, res.g2g = r.chromium(kind)
	b.Logf("%s: Chromium done (%v)", kind, time.Since(start).Round(time.Second))
	time.Sleep(time.Second)

	// 1 viewer, moving then still; Y-PSNR.
	hs := startViewers(b, kind+" room", r.room.NS, kind, r.url(r.room, kind))
	ttfp := hs.join(b, 1, 0)
	time.Sleep(2 * time.Second)
	cpu, cs := r.measure(5*time.Second, hs)
	res.one = summarize(cs[0], cpu)
	res.one.ttfp = median(ttfp)
	r.busy.Move(false)
	time.Sleep(3 * time.Second)
	cpu, cs = r.measure(6*time.Second, hs)
	res.still = summarize(cs[0], cpu)
	res.markOne = r.marks(hs)[0].g2r
	time.Sleep(time.Second)
	res.psnr, res.psnrN, res.psnrNote = r.psnr(kind, hs)
	b.Logf("%s: 1 viewer done (%v)", kind, time.Since(start).Round(time.Second))

	// 10 and 30 viewers, then one more on 2 Mbit/s.
	ttfp = hs.join(b, 9, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	cpu, cs = r.measure(5*time.Second, hs)
	res.ten = summarize(cs[0], cpu)
	res.ten.ttfp, res.ten.ttfpMax = median(ttfp), quantile(ttfp, 1)
	ttfp = hs.join(b, 20, 200*time.Millisecond)
	time.Sleep(3 * time.Second)
	cpu, cs = r.measure(5*time.Second, hs)
	res.thirty = summarize(cs[0], cpu)
	res.thirty.ttfp, res.thirty.ttfpMax = median(ttfp), quantile(ttfp, 1)
	b.Logf("%s: 10 and 30 viewers done (%v)", kind, time.Since(start).Round(time.Second))
	sl := startViewers(b, kind+" 2 Mbit/s", r.slow.NS, kind, r.url(r.slow, kind))
	ttfp = sl.join(b, 1, 0)
	time.Sleep(2 * time.Second)
	_, cs = r.measure(6*time.Second, sl, hs)
	res.slowOne, res.others = summarize(cs[0], math.NaN()), summarize(cs[1], math.NaN())
	res.slowOne.ttfp = median(ttfp)
	m := r.marks(hs, sl)
	res.markThirty = m[0].g2r
	for _, p := range []*phase{&res.one, &res.ten, &res.thirty, &res.others} {
		p.capture(m[0].clock)
	}
	res.slowOne.capture(m[1].clock)
	sl.in.Close()
	hs.in.Close() // the helpers' viewers leave; their cleanups wait for them
	time.Sleep(4 * time.Second)
	b.Logf("%s: 2 Mbit/s done (%v)", kind, time.Since(start).Round(time.Second))

	// 30 joining one a second while 5 watch.
	watchers := startViewers(b, kind+" watchers", r.room.NS, kind, r.url(r.room, kind))
	watchers.join(b, 5, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	_, cs = r.measure(5*time.Second, watchers)
	res.before = summarize(cs[0], math.NaN())
	joiners := startViewers(b, kind+" joiners", r.room.NS, kind, r.url(r.room, kind))
	type measured struct {
		cs  []clientStats
		err error
	}
	during := make(chan measured, 1)
	go func() {
		cs, err := watchers.measure(30 * time.Second)
		during <- measured{cs, err}
	}()
	ttfp = joiners.join(b, 30, time.Second)
	d := <-during
	if d.err != nil {
		b.Fatal(d.err)
	}
	res.during = summarize(d.cs, math.NaN())
	res.joiners = summarize(nil, math.NaN())
	res.joiners.viewers = len(ttfp)
	res.joiners.ttfp, res.joiners.ttfpMax = median(ttfp), quantile(ttfp, 1)
	m = r.marks(watchers)
	res.before.capture(m[0].clock)
	res.during.capture(m[0].clock)
	watchers.in.Close()
	joiners.in.Close()
	time.Sleep(4 * time.Second)
	b.Logf("%s: joining done (%v)", kind, time.Since(start).Round(time.Second))
	for _, p := range []struct {
		what string
		p    phase
	}{{"1 viewer, moving", res.one}, {"1 viewer, still", res.still}, {"10 viewers", res.ten}, {"30 viewers", res.thirty},
		{"2 Mbit/s viewer", res.slowOne}, {"30 others meanwhile", res.others}, {"5 watching", res.before},
		{"5 watching while 30 join", res.during}, {"30 joining", res.joiners}} {
		p.p.log(b, kind, p.what)
	}
	return res
}

// benchColours are the marker's colours, one after another: far apart, so
// that no compression turns one into another.
var benchColours = []color.RGBA{{250, 20, 20, 255}, {20, 230, 20, 255}, {20, 20, 250, 255}, {250, 250, 20, 255}}

// benchPageJS is added to every page: it notes when the page asks for the
// picture (the WHEP POST, or the MJPEG <img>'s src) and when it shows the
// first one (the first requestVideoFrameCallback, or the <img> with a size).
const benchPageJS = `(function () {
	var b = window.__bench = { request: 0, first: 0 };
	var open = XMLHttpRequest.prototype.open;
	XMLHttpRequest.prototype.open = function (m, u) {
		if (m === 'POST' && /whep/.test(u) && !b.request) b.request = performance.now();
		return open.apply(this, arguments);
	};
	var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
	Object.defineProperty(HTMLImageElement.prototype, 'src', { get: src.get, set: function (v) {
		if (/stream\.mjpg/.test(v) && !b.request) b.request = performance.now();
		return src.set.call(this, v);
	}});
	var rvfc = HTMLVideoElement.prototype.requestVideoFrameCallback;
	if (rvfc) HTMLVideoElement.prototype.requestVideoFrameCallback = function (cb) {
		return rvfc.call(this, function (now, meta) {
			if (!b.first) b.first = performance.now();
			cb(now, meta);
		});
	};
	function poll() {
		var img = document.getElementById('screen');
		if (img && img.getAttribute('src') && img.naturalWidth > 0) { if (!b.first) b.first = performance.now(); return; }
		if (!b.first && !document.getElementById('video')) requestAnimationFrame(poll);
	}
	requestAnimationFrame(poll);
})()`

// benchSamplerJS samples the marker's middle from each picture the page
// shows (WebRTC: each requestVideoFrameCallback; MJPEG: each animation
// frame) and notes, with the time, each change to another marker colour.
const benchSamplerJS = `(function (kind, r, colours) {
	var el = document.getElementById(kind === 'webrtc' ? 'video' : 'screen');
	var c = document.createElement('canvas');
	c.width = c.height = 4;
	var g = c.getContext('2d', { willReadFrequently: true });
	var out = window.__g2g = [], last = -2;
	function sample() {
		g.drawImage(el, r[0] + r[2] / 4, r[1] + r[3] / 4, r[2] / 2, r[3] / 2, 0, 0, 4, 4);
		var d = g.getImageData(2, 2, 1, 1).data, k = -1;
		for (var i = 0; i < colours.length; i++) {
			var e = Math.abs(d[0] - colours[i][0]) + Math.abs(d[1] - colours[i][1]) + Math.abs(d[2] - colours[i][2]);
			if (e < 90) k = i;
		}
		if (k >= 0 && k !== last) out.push([performance.timeOrigin + performance.now(), k]);
		last = k;
	}
	if (kind === 'webrtc') {
		var f = function () { sample(); el.requestVideoFrameCallback(f); };
		el.requestVideoFrameCallback(f);
	} else {
		var f2 = function () { sample(); requestAnimationFrame(f2); };
		requestAnimationFrame(f2);
	}
	return true;
})`

// chromium opens the viewer page three times in Chromium (behind the page
// link) for the time to first picture, then paints 24 markers and times
// each until the page shows it. Chromium is closed again afterwards: it
// decodes, and the room's CPU figures must not share the cores with it.
func (r *benchRoom) chromium(kind string) (open, conn float64, g2g []float64) {
	b := r.b
	ctx := testenv.BrowserIn(b, r.page.NS, 800, 600)
	defer chromedp.Cancel(ctx)
	url := r.base(r.page) + "/?transport=" + kind + "&t=" + token
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 600), onNewDocument(benchPageJS)); err != nil {
		b.Fatal(err)
	}
	var opens, conns []float64
	for range 3 {
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
			b.Fatal(err)
		}
		var st benchFirst
		deadline := time.Now().Add(10 * time.Second)
		for st.First == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			st = evalB[benchFirst](b, ctx, `({request: window.__bench.request, first: window.__bench.first})`)
		}
		if st.First == 0 {
			b.Fatalf("%s: the page showed no picture within 10 s", kind)
		}
		opens = append(opens, st.First)
		conns = append(conns, st.First-st.Request)
		time.Sleep(500 * time.Millisecond)
	}
	if kind == "webrtc" && !evalB[bool](b, ctx, "!!document.getElementById('video') && window.deskcast.rtc.playing") {
		b.Fatal("the page does not play WebRTC")
	}
	m := r.busy.Marker
	cols := make([][3]uint8, len(benchColours))
	for i, c := range benchColours {
		cols[i] = [3]uint8{c.R, c.G, c.B}
	}
	js := fmt.Sprintf("%s(%q, [%d, %d, %d, %d], %s)", benchSamplerJS, kind, m.Min.X, m.Min.Y, m.Dx(), m.Dy(), jsonOf(cols))
	evalB[bool](b, ctx, js)
	seen := 0
	for i := range 24 {
		time.Sleep(time.Duration(250+rand.IntN(200)) * time.Millisecond)
		t0, err := r.busy.Mark(benchColours[i%len(benchColours)])
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		found := false
		for !found && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			for _, e := range evalB[[][2]float64](b, ctx, fmt.Sprintf("window.__g2g.slice(%d)", seen)) {
				seen++
				at := time.UnixMicro(int64(e[0] * 1000))
				if int(e[1]) == i%len(benchColours) && at.After(t0) {
					g2g = append(g2g, float64(at.Sub(t0).Microseconds())/1000)
					found = true
				}
			}
		}
		if !found {
			b.Logf("%s: marker %d not seen within 3 s", kind, i)
		}
	}
	_, _ = r.busy.Mark(color.RGBA{255, 255, 255, 255})
	return median(opens), median(conns), g2g
}

// benchFirst is what benchPageJS noted: performance.now() times, ms.
type benchFirst struct {
	Request float64 `json:"request"`
	First   float64 `json:"first"`
}

func evalB[T any](b *testing.B, ctx context.Context, js string) T {
	b.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.Fatalf("evaluate %.80q: %v", js, err)
	}
	return v
}

func jsonOf(v [][3]uint8) string {
	var s []string
	for _, c := range v {
		s = append(s, fmt.Sprintf("[%d,%d,%d]", c[0], c[1], c[2]))
	}
	return "[" + strings.Join(s, ",") + "]"
}

// psnr has one more viewer keep 8 frames of 4 s (WebRTC: decoded by
// OpenH264 from its first keyframe) and compares each with the picture the
// screen showed: the best of the painter's states from 600 ms before the
// frame arrived. It returns the median Y-PSNR.
func (r *benchRoom) psnr(kind string, hs *viewers) (float64, int, string) {
	b := r.b
	dir := b.TempDir()
	rep := hs.do(b, time.Minute, "sample %d %d %s", 4000, 8, dir)
	var dbs []float64
	for _, s := range rep.Samples {
		data, err := os.ReadFile(s.File)
		if err != nil {
			b.Fatal(err)
		}
		at := time.Unix(0, s.At)
		var score func(*image.RGBA) float64
		if kind == "webrtc" {
			img := &image.YCbCr{Y: data, YStride: s.W, Rect: image.Rect(0, 0, s.W, s.H)}
			score = func(want *image.RGBA) float64 {
				return testenv.LumaPSNR(media.NewPicture(want.Pix, want.Rect.Dx(), want.Rect.Dy(), want.Stride, media.RGBA, nil), img)
			}
		} else {
			img, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			yc, ok := img.(*image.YCbCr)
			if !ok {
				b.Fatalf("JPEG decodes to %T", img)
			}
			score = func(want *image.RGBA) float64 { return jpegLumaPSNR(want, yc) }
		}
		best := math.Inf(-1)
		for _, st := range r.busy.States(at.Add(-600*time.Millisecond), at) {
			best = max(best, score(r.busy.Screen(st)))
		}
		dbs = append(dbs, best)
	}
	note := "decoded with OpenH264 in a light viewer"
	if kind == "mjpeg" {
		note = "JPEGs decoded with image/jpeg (full-range luma)"
	}
	return median(dbs), len(dbs), note
}

// jpegLumaPSNR is the Y-PSNR of a JPEG's luma (JFIF: full range) against
// the picture it was made from.
func jpegLumaPSNR(want *image.RGBA, got *image.YCbCr) float64 {
	bd := got.Bounds()
	var sse float64
	for y := range bd.Dy() {
		for x := range bd.Dx() {
			p := want.Pix[y*want.Stride+x*4:]
			yy, _, _ := color.RGBToYCbCr(p[0], p[1], p[2])
			d := float64(int(yy) - int(got.Y[y*got.YStride+x]))
			sse += d * d
		}
	}
	if sse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(bd.Dx()*bd.Dy())/sse)
}

// startServerIn runs the real binary headless in namespace ns, its log
// cut to warnings and errors, until the benchmark ends.
func startServerIn(b *testing.B, ns string, args ...string) *os.Process {
	b.Helper()
	cmd := testenv.Command(ns, appBinary(b), append([]string{"--headless"}, args...)...)
	cmd.Stderr = levelFilter{}
	return runHeadless(b, cmd).Process
}

// levelFilter passes the server's warnings and errors to stderr.
type levelFilter struct{}

func (levelFilter) Write(p []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			fmt.Fprint(os.Stderr, "deskcast: ", l)
		}
	}
	return len(p), nil
}

// report prints the figures as a Markdown table and reports them as metrics.
func report(b *testing.B, mj, rtc *results) {
	f := func(format string, v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	g2g := func(r *results, q float64) float64 { return quantile(r.g2g, q) }
	var rows [][3]string
	row := func(what, target string, cell func(r *results) string) {
		rows = append(rows, [3]string{what, target, cell(mj) + " | " + cell(rtc)})
	}
	row("glass-to-glass in Chromium, median / p95 (ms)", "≤ 60 / ≤ 90", func(r *results) string {
		return f("%.0f", g2g(r, 0.5)) + " / " + f("%.0f", g2g(r, 0.95)) + fmt.Sprintf(" (n=%d)", len(r.g2g))
	})
	row("first picture in Chromium after the page's request / after opening (ms)", "≤ 500 / –", func(r *results) string {
		return f("%.0f", r.ttfpConn) + " / " + f("%.0f", r.ttfpOpen)
	})
	row("first picture, light viewer: 1 / 10 joining / 30 joining, median (ms)", "≤ 500", func(r *results) string {
		return f("%.0f", r.one.ttfp) + " / " + f("%.0f", r.ten.ttfp) + " / " + f("%.0f", r.thirty.ttfp)
	})
	row("moving: fps, 1 viewer", "30", func(r *results) string { return f("%.1f", r.one.fpsMed) })
	row("moving: bitrate, 1 viewer (Mbit/s)", "≤ 4", func(r *results) string { return f("%.2f", r.one.kbps/1000) })
	row("moving: Y-PSNR of received frames, median (dB)", "≥ 38", func(r *results) string {
		return f("%.1f", r.psnr) + fmt.Sprintf(" (n=%d)", r.psnrN)
	})
	row("still: bitrate (kbit/s) / server CPU (% of a core), 1 viewer", "≤ 10 / ≤ 5", func(r *results) string {
		return f("%.1f", r.still.kbps) + " / " + f("%.1f", r.still.cpu)
	})
	row("server CPU, 1 / 10 / 30 viewers (% of a core)", "≤ 60 / – / –", func(r *results) string {
		return f("%.0f", r.one.cpu) + " / " + f("%.0f", r.ten.cpu) + " / " + f("%.0f", r.thirty.cpu)
	})
	row("server CPU, 30 viewers ÷ 1 viewer", "≤ 1.2×", func(r *results) string { return f("%.2f×", r.thirty.cpu/r.one.cpu) })
	row("100 Mbit/s room, 10 viewers: fps min / median", "≥ 27", func(r *results) string {
		return f("%.1f", r.ten.fpsMin) + " / " + f("%.1f", r.ten.fpsMed)
	})
	row("100 Mbit/s room, 30 viewers: fps min / median", "≥ 27", func(r *results) string {
		return f("%.1f", r.thirty.fpsMin) + " / " + f("%.1f", r.thirty.fpsMed)
	})
	row("100 Mbit/s room, 30 viewers: bitrate per viewer, median (Mbit/s)", "–", func(r *results) string { return f("%.2f", r.thirty.kbps/1000) })
	row("100 Mbit/s room, moving: screen → frame complete at the light viewers, median / p95 (ms): 1 / 10 / 30 viewers", "≤ 100 median", func(r *results) string {
		return f("%.0f", r.one.capMed) + " / " + f("%.0f", r.one.capP95) + " ; " + f("%.0f", r.ten.capMed) + " / " + f("%.0f", r.ten.capP95) +
			" ; " + f("%.0f", r.thirty.capMed) + " / " + f("%.0f", r.thirty.capP95)
	})
	row("100 Mbit/s room, moving: send → frame complete (RTCP SR), median / p95 (ms): 1 / 30 viewers", "–", func(r *results) string {
		return f("%.1f", r.one.latMed) + " / " + f("%.1f", r.one.latP95) + " ; " + f("%.1f", r.thirty.latMed) + " / " + f("%.1f", r.thirty.latP95)
	})
	row("still screen: paint → frame complete at the light viewers, median / p95 (ms): 1 / 30 viewers", "–", func(r *results) string {
		return f("%.0f", quantile(r.markOne, 0.5)) + " / " + f("%.0f", quantile(r.markOne, 0.95)) + " ; " +
			f("%.0f", quantile(r.markThirty, 0.5)) + " / " + f("%.0f", quantile(r.markThirty, 0.95))
	})
	row("30 joining 1/s: the 5 watching, fps min / slowest second", "≥ 27", func(r *results) string {
		return f("%.1f", r.during.fpsMin) + " / " + f("%.0f", r.during.worstSec)
	})
	row("30 joining 1/s: the 5 watching, screen → frame complete median, before → during (ms)", "moves ≤ 20", func(r *results) string {
		return f("%.0f", r.before.capMed) + " → " + f("%.0f", r.during.capMed)
	})
	row("30 joining 1/s: joiners' first frame, median / max (ms)", "≤ 500", func(r *results) string {
		return f("%.0f", r.joiners.ttfp) + " / " + f("%.0f", r.joiners.ttfpMax)
	})
	row("2 Mbit/s viewer among 30: its fps / screen → frame complete median (ms)", "≥ 10 / –", func(r *results) string {
		return f("%.1f", r.slowOne.fpsMed) + " / " + f("%.0f", r.slowOne.capMed)
	})
	row("… the 30 others meanwhile: fps min / median, screen → frame complete median (ms)", "≥ 27, unchanged", func(r *results) string {
		return f("%.1f", r.others.fpsMin) + " / " + f("%.1f", r.others.fpsMed) + ", " + f("%.0f", r.others.capMed)
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nDeskcast, 1920x1080 busy desktop (testenv.Busy), --fps 30 --quality 70, %s\n\n", time.Now().Format("2006-01-02"))
	sb.WriteString("| figure | target | MJPEG | WebRTC (H.264) |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
	fmt.Fprintf(&sb, "\nY-PSNR: MJPEG %s; WebRTC %s. Light viewers are pion WHEP clients (no decoding) or MJPEG readers. "+
		"Screen → frame complete: each WebRTC viewer's RTP clock calibrated by 10 markers on a still screen (an upper bound, within a few ms). "+
		"Send → frame complete: the server's clock for the frame's RTP time by the newest RTCP sender report, pinned at the first packet of the frame sent last (no capture or encode in it).\n", mj.psnrNote, rtc.psnrNote)
	fmt.Fprint(os.Stdout, sb.String())

	for _, r := range []*results{mj, rtc} {
		k := r.kind
		metric := func(v float64, unit string) {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				b.ReportMetric(v, unit+"/"+k)
			}
		}
		metric(g2g(r, 0.5), "g2g-ms-median")
		metric(g2g(r, 0.95), "g2g-ms-p95")
		metric(r.ttfpConn, "first-picture-ms")
		metric(r.one.fpsMed, "fps-1")
		metric(r.one.kbps, "kbps-moving")
		metric(r.still.kbps, "kbps-still")
		metric(r.psnr, "Y-PSNR-dB")
		metric(r.still.cpu, "cpu%-still")
		metric(r.one.cpu, "cpu%-1")
		metric(r.ten.cpu, "cpu%-10")
		metric(r.thirty.cpu, "cpu%-30")
		metric(r.thirty.fpsMin, "fps-min-30")
		metric(r.thirty.latMed, "sr-latency-ms-30")
		metric(r.one.capMed, "screen-to-viewer-ms-1")
		metric(r.thirty.capMed, "screen-to-viewer-ms-30")
		metric(r.during.fpsMin, "fps-min-joining")
		metric(r.slowOne.fpsMed, "fps-2mbit")
	}
}
