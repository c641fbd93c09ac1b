package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"

	"github.com/deskcast/deskcast/internal/testenv"
)

// BenchmarkSoundToPage measures sound from a PulseAudio sink to the viewer
// page in Chromium, through the real binary in audio-only mode: the delay
// from writing a tone burst into the sink to the page's analyser hearing it
// (median of 10), then underruns, trims and buffer depth over 2 minutes of
// steady sound, and the server's CPU meanwhile. Figures, not a pass/fail test.
func BenchmarkSoundToPage(b *testing.B) {
	testenv.StartX(b, 320, 240)
	sink := testenv.NewSink(b)
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token,
		"--audio", sink.Name, "--mode", "audio")
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
	waitTrue(`!document.getElementById('btn-sound').hidden && !document.getElementById('sound').hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-sound"))); err != nil {
		b.Fatal(err)
	}
	waitTrue(`window.deskcast.audio.chunks > 300`) // past PulseAudio's start-up
	// Onset detector on the last 5 ms the analyser saw, polled every millisecond.
	run(`(function () {
		var a = window.deskcast.audio, buf = new Float32Array(a.analyser.fftSize), on = false;
		window.__onsets = [];
		setInterval(function () {
			a.analyser.getFloatTimeDomainData(buf);
			var s = 0;
			for (var i = buf.length - 240; i < buf.length; i++) s += buf[i] * buf[i];
			var rms = Math.sqrt(s / 240);
			if (!on && rms > 0.1) { on = true; window.__onsets.push(Date.now()); }
			if (on && rms < 0.02) on = false;
		}, 1);
	})()`)

	var lat []float64
	for i := range 10 {
		time.Sleep(700 * time.Millisecond)
		reply := make(chan time.Time)
		burst <- reply
		t0 := <-reply
		waitTrue(fmt.Sprintf("window.__onsets.length > %d", i))
		onset, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf("window.__onsets[%d]", i)))
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, onset-float64(t0.UnixMicro())/1000)
	}
	slices.Sort(lat)
	outLat, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`((window.deskcast.audio.ctx.outputLatency || 0) + (window.deskcast.audio.ctx.baseLatency || 0)) * 1000`))

	// Two minutes of steady sound: the jitter buffer's depth each second,
	// underruns and trims, and the server's CPU.
	steady := 2 * time.Minute
	if s := os.Getenv("DESKCAST_AUDIO_SOAK"); s != "" {
		steady, _ = time.ParseDuration(s)
	}
	stopTone := sink.Play(testenv.Tone(440, 0.3, steady+10*time.Second))
	defer stopTone()
	time.Sleep(2 * time.Second)
	run(`window.deskcast.audio.underruns = 0; window.deskcast.audio.trimmed = 0`)
	u0, s0 := proc.cpuSplit()
	t0 := time.Now()
	var depths []float64
	for time.Since(t0) < steady {
		time.Sleep(time.Second)
		d, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.deskcast.audio.depth * 1000`))
		if err == nil {
			depths = append(depths, d)
		}
	}
	u1, s1 := proc.cpuSplit()
	cpu := (u1 + s1 - u0 - s0) / time.Since(t0).Seconds() * 100
	counts, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](
		`({u: window.deskcast.audio.underruns, t: window.deskcast.audio.trimmed, target: window.deskcast.audio.target * 1000})`))
	slices.Sort(depths)

	b.ReportMetric(lat[len(lat)/2], "sink-to-page-ms-median")
	b.ReportMetric(counts["u"], "underruns")
	b.ReportMetric(cpu, "cpu%")
	fmt.Printf(`
Deskcast sound, 48 kHz stereo s16 over /ws/audio, PulseAudio null sink to headless Chromium
  sink to page (analyser)  median %.0f ms, min %.0f, max %.0f (n=%d); + %.0f ms output latency the browser reports
  over %v steady        underruns %.0f, trimmed chunks %.0f, buffer depth min %.0f / median %.0f / max %.0f ms (target now %.0f ms)
  server CPU               %.1f%% of one core (1 listener, audio only)
`, lat[len(lat)/2], lat[0], lat[len(lat)-1], len(lat), outLat, steady, counts["u"], counts["t"],
		depths[0], depths[len(depths)/2], depths[len(depths)-1], counts["target"], cpu)
}

// burstPlayer starts a player that writes into sink in real time, 10 ms at
// a time: silence, or a 440 Hz burst of 200 ms when asked; asked with a
// channel, it sends on it when the burst is written into the sink: when
// pacat, which plays with a 10 ms latency, can read it from its pipe, after
// what the pipe holds before it (10 to 20 ms; counting from the write
// into the pipe made every figure that much later). It stops when b ends.
func burstPlayer(b *testing.B, sink *testenv.Sink) chan chan time.Time {
	player := exec.Command("pacat", "--playback", "--device="+sink.Name, "--format=s16le", "--rate=48000",
		"--channels=2", "--latency-msec=10", "--raw")
	in, _ := player.StdinPipe()
	if err := player.Start(); err != nil {
		b.Fatal(err)
	}
	// The writer runs at real time from before pacat reads, so a default
	// 64 KB pipe (340 ms of sound) would stay full and delay every burst;
	// one page (21 ms) bounds that backlog.
	pipe, ok := in.(*os.File)
	if !ok {
		b.Fatal("pacat's stdin is not a pipe")
	}
	if _, err := unix.FcntlInt(pipe.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		b.Fatalf("shrinking the pipe: %v", err)
	}
	burst := make(chan chan time.Time)
	stopPlayer := make(chan struct{})
	var wg sync.WaitGroup
	b.Cleanup(func() {
		close(stopPlayer)
		wg.Wait()
		_ = player.Process.Kill()
		_ = player.Wait()
	})
	wg.Go(func() {
		silence := make([]byte, 480*4)
		tone := testenv.Tone(440, 0.5, 200*time.Millisecond)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var playing []byte
		for {
			select {
			case <-stopPlayer:
				return
			case reply := <-burst:
				playing = tone
				// The burst reaches pacat once what the pipe still
				// holds has been read, at the real-time rate (which
				// depends on where the writer started against pacat,
				// up to 21 ms, the same for a whole run).
				queued, err := unix.IoctlGetInt(int(pipe.Fd()), unix.TIOCINQ)
				if err != nil {
					queued = 0
				}
				reply <- time.Now().Add(time.Duration(queued/4) * time.Second / 48000)
			case <-t.C:
			}
			chunk := silence
			if len(playing) > 0 {
				chunk, playing = playing[:480*4], playing[480*4:]
			}
			if _, err := in.Write(chunk); err != nil {
				return
			}
		}
	})
	return burst
}
