package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/internal/testenv"
)

// BenchmarkSoundOverWebRTC measures the sound as an Opus track beside the
// picture, through the real binary and headless Chromium: the delay from
// writing a tone burst into the sink (from when pacat can read it: see
// burstPlayer) to the page's analyser hearing it (median and p95 of 20),
// and how many bursts the analyser heard dip and start again; the A/V
// offset, a flash painted on the screen at the instant a burst reaches
// pacat, each detected in the page (the flash in a
// requestVideoFrameCallback, the burst by the analyser; positive: the
// sound comes later; median of 10); and the server's CPU over 30 s of
// steady sound on a still screen with one viewer listening, against the
// same page for 30 s on a server without sound. Figures, not a pass/fail
// test.
func BenchmarkSoundOverWebRTC(b *testing.B) {
	x := testenv.StartX(b, 640, 480)
	x.Fill(black)
	sink := testenv.NewSink(b)
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--audio", sink.Name, "--fps", "30")
	proc := procStats{pid: cmd.Process.Pid}
	burst := burstPlayer(b, sink)

	ctx := testenv.Browser(b, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token)); err != nil {
		b.Fatal(err)
	}
	run := func(js string) {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](js)); err != nil {
			b.Fatalf("%s: %v", js, err)
		}
	}
	num := func(js string) float64 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			b.Fatalf("%s: %v", js, err)
		}
		return v
	}
	waitTrue := func(js string) {
		deadline := time.Now().Add(15 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("never true: %s (%v)", js, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitTrue(`window.deskcast.rtc.playing && !!window.deskcast.rtc.audioTrack && !document.getElementById('btn-sound').hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-sound"))); err != nil {
		b.Fatal(err)
	}
	waitTrue(`window.deskcast.audio.via === 'webrtc'`)
	time.Sleep(3 * time.Second) // past PulseAudio's and the jitter buffer's start-up
	// Onsets: of sound, the analyser's last 5 ms polled every millisecond;
	// of the flash, the picture's middle in each frame the <video> presents.
	run(`(function () {
		var a = window.deskcast.audio, buf = new Float32Array(a.analyser.fftSize), on = false;
		window.__onsets = []; window.__flashes = [];
		setInterval(function () {
			a.analyser.getFloatTimeDomainData(buf);
			var s = 0;
			for (var i = buf.length - 240; i < buf.length; i++) s += buf[i] * buf[i];
			var rms = Math.sqrt(s / 240);
			if (!on && rms > 0.1) { on = true; window.__onsets.push(Date.now()); }
			if (on && rms < 0.02) on = false;
		}, 1);
		var v = document.getElementById('video'), c = document.createElement('canvas'), lit = false;
		c.width = c.height = 4;
		var g = c.getContext('2d');
		function frame(now, meta) {
			g.drawImage(v, 0, 0, 4, 4);
			var p = g.getImageData(2, 2, 1, 1).data, bright = p[0] + p[1] + p[2] > 600;
			// meta.expectedDisplayTime is when the compositor shows it, on the performance clock.
			if (bright && !lit) window.__flashes.push(performance.timeOrigin + (meta.expectedDisplayTime || now));
			lit = bright;
			v.requestVideoFrameCallback(frame);
		}
		v.requestVideoFrameCallback(frame);
		// The first time in a at or after t (0 if none yet): each burst's
		// onset is the first after it began, so a dip inside a burst that
		// the analyser hears as a second onset is not taken for the next.
		window.__first = function (a, t) {
			for (var i = 0; i < a.length; i++) if (a[i] >= t) return a[i];
			return 0;
		};
	})()`)

	var lat []float64
	for range 20 {
		time.Sleep(600 * time.Millisecond)
		reply := make(chan time.Time)
		burst <- reply
		t0 := float64((<-reply).UnixMicro()) / 1000
		waitTrue(fmt.Sprintf("window.__first(window.__onsets, %f) > 0", t0))
		lat = append(lat, num(fmt.Sprintf("window.__first(window.__onsets, %f)", t0))-t0)
	}
	slices.Sort(lat)

	var av, pic []float64
	for range 10 {
		time.Sleep(600 * time.Millisecond)
		reply := make(chan time.Time)
		burst <- reply
		at := <-reply
		time.Sleep(time.Until(at)) // the flash as the burst reaches pacat
		x.Fill(white)
		t0 := float64(at.UnixMicro()) / 1000
		waitTrue(fmt.Sprintf("window.__first(window.__onsets, %[1]f) > 0 && window.__first(window.__flashes, %[1]f) > 0", t0))
		av = append(av, num(fmt.Sprintf("window.__first(window.__onsets, %[1]f) - window.__first(window.__flashes, %[1]f)", t0)))
		pic = append(pic, num(fmt.Sprintf("window.__first(window.__flashes, %f)", t0))-t0)
		time.Sleep(300 * time.Millisecond)
		x.Fill(black)
	}
	slices.Sort(av)
	slices.Sort(pic)
	// Dips: onsets less than 300 ms after another, inside one 200 ms burst.
	dips := num(`window.__onsets.filter(function (o, i, a) { return i > 0 && o - a[i - 1] < 300; }).length`)
	outLat := num(`((window.deskcast.audio.ctx.outputLatency || 0) + (window.deskcast.audio.ctx.baseLatency || 0)) * 1000`)

	// CPU: 30 s of a steady tone on a still screen with the viewer
	// listening (sound captured, Opus encoded, sent, beside the picture's
	// session and the pointer), against the same page for 30 s on a second
	// server started without sound: the difference is what sound costs. The
	// first server with nobody watching is the floor.
	steady := 30 * time.Second
	stopTone := sink.Play(testenv.Tone(440, 0.3, steady+10*time.Second))
	defer stopTone()
	time.Sleep(3 * time.Second)
	cpuOver := func(p procStats) float64 {
		u0, s0 := p.cpuSplit()
		t0 := time.Now()
		time.Sleep(steady)
		u1, s1 := p.cpuSplit()
		return (u1 + s1 - u0 - s0) / time.Since(t0).Seconds() * 100
	}
	c0 := num(`window.deskcast.rtc.audioStats.concealed`)
	s0 := num(`window.deskcast.rtc.audioStats.samples`)
	listening := cpuOver(proc)
	st := num(`window.deskcast.rtc.audioStats.samples`) - s0
	concealed := (num(`window.deskcast.rtc.audioStats.concealed`) - c0) / max(st, 1) * 100
	jitter := num(`window.deskcast.rtc.audioStats.jitterMs`)
	avStats, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.deskcast.rtc.audioStats.avMs === null ? -9999 : window.deskcast.rtc.audioStats.avMs`))
	// The same with a player that asks for 40 ms, as browsers do, instead
	// of 10: the sink then hands its monitor data in larger blocks, less
	// often, and the capture wakes up less.
	stopTone()
	sink.PlayWith(testenv.Tone(440, 0.3, steady+10*time.Second), 40*time.Millisecond) // stopped when the bench ends
	time.Sleep(3 * time.Second)
	listening40 := cpuOver(proc)

	silentPort := freePort(b)
	silent := startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", silentPort), "--token", token, "--audio", "none", "--fps", "30")
	if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/?t=%s", silentPort, token))); err != nil {
		b.Fatal(err)
	}
	waitTrue(`window.deskcast.rtc.playing`)
	time.Sleep(3 * time.Second)
	pictureOnly := cpuOver(procStats{pid: silent.Process.Pid})
	idle := cpuOver(proc)

	b.ReportMetric(lat[len(lat)/2], "sink-to-page-ms-median")
	b.ReportMetric(av[len(av)/2], "av-offset-ms-median")
	b.ReportMetric(listening-pictureOnly, "sound-cpu%")
	fmt.Printf(`
Deskcast sound over WebRTC (Opus beside H.264, one PeerConnection), PulseAudio null sink to headless Chromium
  sink to page (analyser)  median %.0f ms, p95 %.0f, min %.0f, max %.0f (n=%d); + %.0f ms output latency the browser reports; %.0f dips inside a burst
  A/V offset (flash→rVFC, burst→analyser; + = sound later)  median %+.0f ms, min %+.0f, max %+.0f (n=%d); getStats' estimate %+.0f ms
  picture beside sound     painted to presented (rVFC) median %.0f ms, min %.0f, max %.0f
  over %v steady        concealed %.2f%% of samples, jitter buffer %.0f ms
  server CPU               %.1f%% of one core for picture, pointer and sound; %.1f%% for the same page without sound: sound over WebRTC costs %.1f%% (%.1f%% with nobody watching)
                           with the player asking for 40 ms instead of 10: %.1f%%, sound costing %.1f%%
`, lat[len(lat)/2], lat[len(lat)*95/100], lat[0], lat[len(lat)-1], len(lat), outLat, dips,
		av[len(av)/2], av[0], av[len(av)-1], len(av), avStats, pic[len(pic)/2], pic[0], pic[len(pic)-1], steady, concealed, jitter, listening, pictureOnly, listening-pictureOnly, idle, listening40, listening40-pictureOnly)
}

// BenchmarkSoundSoak plays a steady tone to one WebRTC listener for 10
// minutes (DESKCAST_WEBRTC_SOAK, a Go duration, changes that) and reads the
// page's receiver every 10 s: the samples concealed, the jitter buffer's
// depth, and the sound's delay from the sender's wall clock to what plays
// now (estimatedPlayoutTimestamp, mapped through the sender reports), whose
// change from the first minute to the last is the drift: a sender whose
// timestamps ran faster or slower than the sound would make it grow or
// shrink. Figures, not a pass/fail test.
func BenchmarkSoundSoak(b *testing.B) {
	soak := 10 * time.Minute
	if v := os.Getenv("DESKCAST_WEBRTC_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("DESKCAST_WEBRTC_SOAK: %v", err)
		}
		soak = d
	}
	x := testenv.StartX(b, 320, 240)
	x.Fill(black)
	sink := testenv.NewSink(b)
	port := freePort(b)
	startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--audio", sink.Name, "--fps", "30")
	stopTone := sink.Play(testenv.Tone(440, 0.3, soak+time.Minute))
	defer stopTone()
	ctx := testenv.Browser(b, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/?t=%s", port, token))); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.deskcast.rtc.playing && !document.getElementById('btn-sound').hidden`))
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no WebRTC picture with sound within 15 s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-sound"))); err != nil {
		b.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	type sample struct{ Samples, Concealed, JBDelay, JBCount, DelayMs float64 }
	read := func() sample {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[sample](`window.deskcast.rtc.pc.getStats().then(function (r) {
			var o = null;
			r.forEach(function (x) { if (x.type === 'inbound-rtp' && x.kind === 'audio') o = x; });
			return {Samples: o.totalSamplesReceived, Concealed: o.concealedSamples, JBDelay: o.jitterBufferDelay,
				JBCount: o.jitterBufferEmittedCount, DelayMs: Date.now() - (o.estimatedPlayoutTimestamp - 2208988800000)};
		})`, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	first := read()
	var delays, depths []float64
	prev := first
	for end := time.Now().Add(soak); time.Now().Before(end); {
		time.Sleep(10 * time.Second)
		s := read()
		delays = append(delays, s.DelayMs)
		if dj := s.JBCount - prev.JBCount; dj > 0 {
			depths = append(depths, (s.JBDelay-prev.JBDelay)*1000/dj)
		}
		prev = s
	}
	if len(delays) < 2 || len(depths) == 0 {
		b.Fatalf("too short a soak: %v", soak)
	}
	// The drift: the delay's change from the second minute (the jitter
	// buffer has settled by then) to the last, each the median of its samples.
	n := min(6, max(1, len(delays)/10))
	from := min(6, len(delays)-n)
	startDelay, endDelay := median(delays[from:from+n]), median(delays[len(delays)-n:])
	var series []string
	for i := 0; i < len(delays); i += 6 {
		series = append(series, fmt.Sprintf("%.0f", delays[i]))
	}
	concealed := (prev.Concealed - first.Concealed) / max(prev.Samples-first.Samples, 1) * 100
	slices.Sort(depths)
	b.ReportMetric(concealed, "concealed-%")
	b.ReportMetric(endDelay-startDelay, "drift-ms")
	fmt.Printf(`
Deskcast sound over WebRTC, %v of a steady tone to one listener (headless Chromium)
  concealed                %.3f%% of %.0f samples
  jitter buffer            median %.0f ms, max %.0f (each 10 s)
  sound's delay            %.0f ms in the second minute, %.0f ms in the last: drift %+.0f ms (each minute: %s ms)
`, soak, concealed, prev.Samples-first.Samples, depths[len(depths)/2], depths[len(depths)-1], startDelay, endDelay, endDelay-startDelay, strings.Join(series, " "))
}
