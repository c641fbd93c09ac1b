package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/codec/opus"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// TestSoundOverWebRTC: with WebRTC, Chromium plays the sound as the
// session's Opus track (no /ws/audio), in the picture's MediaStream: the
// page's analyser on the remote track peaks at 440 Hz after the tap, at
// 880 Hz after a live device switch, reads silence from a quiet sink, and
// when the sink goes away the picture and the connection stay and the
// sound comes back with it.
func TestSoundOverWebRTC(t *testing.T) {
	if err := opus.Available(); err != nil {
		t.Skip(err)
	}
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	s440, s880, quiet := testenv.NewSink(t), testenv.NewSink(t), testenv.NewSink(t)
	s440.Play(testenv.Tone(440, 0.5, 120*time.Second))
	s880.Play(testenv.Tone(880, 0.5, 120*time.Second))
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80, Audio: "pulse:" + s440.Monitor()})
	if w := webrtcStatus(t, base); w == nil || !w.Available || w.Audio != "opus" {
		t.Skipf("WebRTC with sound not offered: %+v", w)
	}
	ctx, errs := openPage(t, base, "/?t="+token)
	waitJS(t, ctx, 10*time.Second, "window.deskcast.rtc.playing && !!window.deskcast.rtc.audioTrack")
	waitEval(t, ctx, "the sound button", `!document.getElementById('sound').hidden && !document.getElementById('btn-sound').hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#btn-sound"))); err != nil {
		t.Fatal(err)
	}
	eval[float64](t, ctx, "window.__notReloaded = 1")
	peak := func(want float64) {
		t.Helper()
		js := fmt.Sprintf("Math.abs(window.deskcast.peakHz() - %f) < 20", want)
		waitEval(t, ctx, fmt.Sprintf("a %.0f Hz peak in the page's analyser", want), js)
	}
	peak(440)
	if !eval[bool](t, ctx, `(function () {
		var a = window.deskcast.audio, v = document.getElementById('video');
		return a.via === 'webrtc' && !a.ws && a.chunks === 0 && !!v && !v.muted &&
			v.srcObject.getAudioTracks().length === 1 && v.srcObject.getVideoTracks().length === 1;
	})()`) {
		t.Fatal("the sound does not play over WebRTC in the picture's stream: " +
			eval[string](t, ctx, "JSON.stringify({via: window.deskcast.audio.via, ws: !!window.deskcast.audio.ws, chunks: window.deskcast.audio.chunks})"))
	}
	waitJS(t, ctx, 5*time.Second, "!!window.deskcast.rtc.audioStats && window.deskcast.rtc.audioStats.codec === 'audio/opus'")
	txt := waitStats(t, ctx, 5*time.Second, "audio      WebRTC opus")
	t.Logf("overlay: %s", txt)

	if err := e.SetAudio("pulse:" + s880.Monitor()); err != nil {
		t.Fatal(err)
	}
	peak(880)
	if eval[bool](t, ctx, "window.__notReloaded !== 1") {
		t.Fatal("the page reloaded")
	}

	t.Run("silence", func(t *testing.T) {
		if err := e.SetAudio("pulse:" + quiet.Monitor()); err != nil {
			t.Fatal(err)
		}
		waitEval(t, ctx, "silence in the page's analyser", "window.deskcast.peakHz() === 0")
	})

	t.Run("sink unloaded and back", func(t *testing.T) {
		if err := e.SetAudio("pulse:" + s440.Monitor()); err != nil {
			t.Fatal(err)
		}
		peak(440)
		pc := eval[string](t, ctx, "window.deskcast.rtc.location")
		s440.Unload()
		waitStatus(t, base, "the audio error", func(st web.Status) bool { return st.Audio.State == "error" })
		x.Fill(blue)
		waitJS(t, ctx, 5*time.Second, `(function () {
			var v = document.getElementById('video'), c = document.createElement('canvas');
			c.width = 8; c.height = 8;
			var g = c.getContext('2d');
			g.drawImage(v, 0, 0, 8, 8);
			var p = g.getImageData(4, 4, 1, 1).data;
			return p[2] > 170 && p[0] < 90 && p[1] < 110; // blue, give or take the codec
		})()`)
		s440.Reload()
		s440.Play(testenv.Tone(440, 0.5, 30*time.Second))
		peak(440)
		if got := eval[string](t, ctx, "window.deskcast.rtc.location"); got != pc {
			t.Errorf("a new WebRTC session (%q, was %q): want the same connection", got, pc)
		}
	})
	noConsoleErrors(t, errs)
}
