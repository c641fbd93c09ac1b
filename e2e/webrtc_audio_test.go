package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/access"
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
	tapSound(t, ctx)
	eval[float64](t, ctx, "window.__notReloaded = 1")
	waitPeak(t, ctx, 440)
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
	waitPeak(t, ctx, 880)
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
		waitPeak(t, ctx, 440)
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
		waitPeak(t, ctx, 440)
		if got := eval[string](t, ctx, "window.deskcast.rtc.location"); got != pc {
			t.Errorf("a new WebRTC session (%q, was %q): want the same connection", got, pc)
		}
	})
	noConsoleErrors(t, errs)
}

// countSockets records the address of each WebSocket the page opens, in
// window.__sockets (run before the page's scripts).
var countSockets = onNewDocument(`(function () {
	var W = window.WebSocket;
	window.__sockets = [];
	window.WebSocket = function (url, p) { window.__sockets.push(String(url)); return p ? new W(url, p) : new W(url); };
	window.WebSocket.prototype = W.prototype;
	window.WebSocket.CONNECTING = 0; window.WebSocket.OPEN = 1; window.WebSocket.CLOSING = 2; window.WebSocket.CLOSED = 3;
})();`)

// audioSockets is how many /ws/audio sockets the page has opened.
const audioSockets = `window.__sockets.filter(function (u) { return u.indexOf('/ws/audio') >= 0; }).length`

// TestSoundOnlyOverWebRTC: in audio-only mode Chromium plays the sound
// over a WebRTC session with the sound alone (no /ws/audio at any time):
// the analyser peaks at 440 Hz after the tap, getStats says audio/opus, the
// level meter moves; live switches to screen+sound and back keep the sound,
// and the longest gap in it is logged.
func TestSoundOnlyOverWebRTC(t *testing.T) {
	if err := opus.Available(); err != nil {
		t.Skip(err)
	}
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	s440 := testenv.NewSink(t)
	s440.Play(testenv.Tone(440, 0.5, 120*time.Second))
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80, Audio: "pulse:" + s440.Monitor(), Mode: access.ModeAudio})
	if w := webrtcStatus(t, base); w == nil || !w.Available || w.Audio != "opus" {
		t.Skipf("WebRTC with sound not offered: %+v", w)
	}
	ctx, errs := openPage(t, base, "/?t="+token, countSockets)
	waitEval(t, ctx, "the audio-only card and the sound button",
		`!document.getElementById('audio-card').hidden && !document.getElementById('btn-sound').hidden`)
	if n := eval[int](t, ctx, `window.deskcast.rtc.pc ? 1 : 0`); n != 0 {
		t.Fatal("a WebRTC session before the tap")
	}
	tapSound(t, ctx)
	eval[float64](t, ctx, "window.__notReloaded = 1")
	soundOnly := `(function () {
		var a = window.deskcast.audio, r = window.deskcast.rtc, el = document.getElementById('rtc-audio');
		return a.via === 'webrtc' && r.soundOnly && r.playing && !a.ws && !!el && el === r.player && !el.muted &&
			!document.getElementById('video') && el.srcObject.getAudioTracks().length === 1 &&
			el.srcObject.getVideoTracks().length === 0;
	})()`
	waitPeak(t, ctx, 440)
	waitEval(t, ctx, "the sound in a sound-only WebRTC session", soundOnly)
	waitJS(t, ctx, 5*time.Second, "!!window.deskcast.rtc.audioStats && window.deskcast.rtc.audioStats.codec === 'audio/opus' && window.deskcast.rtc.audioStats.packets > 0")
	txt := waitStats(t, ctx, 5*time.Second, "picture    none (audio only)", "audio      WebRTC opus")
	t.Logf("overlay: %s", txt)
	waitEval(t, ctx, "the level meter moving", `parseFloat(document.getElementById('meter-bar').style.width) > 30`)
	t.Logf("meter at %s", eval[string](t, ctx, `document.getElementById('meter-bar').style.width`))
	if n := webrtcStatus(t, base).Sessions; n != 1 {
		t.Errorf("%d WebRTC sessions on the server, want 1", n)
	}

	// gapAfter switches the mode and returns the longest stretch without a
	// 440 Hz peak in the page (sampled every 10 ms) until the sound is back
	// and has played for 2 s.
	gapAfter := func(m access.Mode, ready string) time.Duration {
		t.Helper()
		eval[bool](t, ctx, `(function () {
			var g = window.__gap = { last: performance.now(), max: 0 };
			clearInterval(window.__gapTimer);
			window.__gapTimer = setInterval(function () {
				var now = performance.now();
				if (Math.abs(window.deskcast.peakHz() - 440) < 20) { g.max = Math.max(g.max, now - g.last); g.last = now; }
			}, 10);
			return true;
		})()`)
		if err := e.SetMode(m); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for !eval[bool](t, ctx, ready) {
			if time.Now().After(deadline) {
				t.Fatalf("the page never switched to mode %s: %s", m, eval[string](t, ctx, `JSON.stringify({
					via: window.deskcast.audio.via, ws: !!window.deskcast.audio.ws, why: window.deskcast.audio.why,
					soundOnly: window.deskcast.rtc.soundOnly, playing: window.deskcast.rtc.playing, pc: !!window.deskcast.rtc.pc,
					state: window.deskcast.rtc.pc && window.deskcast.rtc.pc.connectionState,
					video: !!document.getElementById('video'), audio: !!document.getElementById('rtc-audio'),
					player: window.deskcast.rtc.player && window.deskcast.rtc.player.tagName,
					muted: window.deskcast.rtc.player && window.deskcast.rtc.player.muted})`))
			}
			time.Sleep(100 * time.Millisecond)
		}
		waitPeak(t, ctx, 440)
		time.Sleep(2 * time.Second)
		ms := eval[float64](t, ctx, `clearInterval(window.__gapTimer), Math.max(window.__gap.max, performance.now() - window.__gap.last)`)
		return time.Duration(ms * float64(time.Millisecond))
	}
	inPicture := `(function () {
		var a = window.deskcast.audio, r = window.deskcast.rtc, v = document.getElementById('video');
		return a.via === 'webrtc' && !r.soundOnly && r.playing && !!v && v === r.player && !v.muted &&
			!document.getElementById('rtc-audio').srcObject && v.srcObject.getAudioTracks().length === 1;
	})()`
	gap := gapAfter(access.ModeScreenAudio, inPicture)
	if eval[bool](t, ctx, "document.getElementById('video').paused") {
		t.Error("the new <video> is paused (unmuted without a tap)")
	}
	t.Logf("sound only → screen+sound: longest gap in the 440 Hz tone %v", gap.Round(time.Millisecond))
	gap = gapAfter(access.ModeAudio, soundOnly)
	t.Logf("screen+sound → sound only: longest gap in the 440 Hz tone %v", gap.Round(time.Millisecond))
	if gap > 2*time.Second {
		t.Errorf("the sound stopped for %v at the switch to sound only", gap)
	}
	waitSessions(t, base, 1, 5*time.Second)
	if n := eval[int](t, ctx, audioSockets); n != 0 {
		t.Errorf("the page opened /ws/audio %d times", n)
	}
	if eval[bool](t, ctx, "window.__notReloaded !== 1") {
		t.Fatal("the page reloaded")
	}
	noConsoleErrors(t, errs)
}

// TestSoundOnlyFallback: audio-only mode plays over /ws/audio when WebRTC
// cannot carry it (no RTCPeerConnection, a refused offer, no connection
// within 3 s, ?transport=mjpeg), by itself, and the overlay says why.
func TestSoundOnlyFallback(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	x.Fill(green)
	s440 := testenv.NewSink(t)
	s440.Play(testenv.Tone(440, 0.5, 90*time.Second))
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80, Audio: "pulse:" + s440.Monitor(), Mode: access.ModeAudio})
	w := webrtcStatus(t, base)
	for _, c := range []struct{ name, query, js, why string }{
		{"no RTCPeerConnection", "", `delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;`,
			"no RTCPeerConnection in this browser"},
		{"offer refused", "", `(function () {
			var send = XMLHttpRequest.prototype.send;
			XMLHttpRequest.prototype.send = function (b) { return send.call(this, typeof b === 'string' ? 'v=0\r\nnonsense\r\n' : b); };
		})()`, "POST /whep: 400"},
		{"not connected", "", `(function () {
			var strip = function (sdp) { return sdp.replace(/a=candidate:[^\r\n]*\r?\n/g, ''); };
			var send = XMLHttpRequest.prototype.send;
			XMLHttpRequest.prototype.send = function (b) { return send.call(this, typeof b === 'string' ? strip(b) : b); };
			var srd = RTCPeerConnection.prototype.setRemoteDescription;
			RTCPeerConnection.prototype.setRemoteDescription = function (d) {
				return srd.call(this, {type: d.type, sdp: strip(d.sdp)});
			};
		})()`, "not connected within 3 s"},
		{"transport=mjpeg", "&transport=mjpeg", "", "off by ?transport=mjpeg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.why != "no RTCPeerConnection in this browser" && c.why != "off by ?transport=mjpeg" && (w == nil || w.Audio != "opus") {
				t.Skipf("WebRTC with sound not offered: %+v", w)
			}
			setup := []chromedp.Action[chromedp.Void]{countSockets}
			if c.js != "" {
				setup = append(setup, onNewDocument(c.js))
			}
			ctx, errs := openPage(t, base, "/?t="+token+c.query, setup...)
			waitEval(t, ctx, "the audio-only card and the sound button",
				`!document.getElementById('audio-card').hidden && !document.getElementById('btn-sound').hidden`)
			tapSound(t, ctx)
			start := time.Now()
			waitEval(t, ctx, "a 440 Hz peak in the page's analyser over /ws/audio",
				"window.deskcast.audio.via === 'ws' && Math.abs(window.deskcast.peakHz() - 440) < 20")
			t.Logf("440 Hz over /ws/audio %v after the tap", time.Since(start).Round(time.Millisecond))
			if !eval[bool](t, ctx, `!!window.deskcast.audio.ws && window.deskcast.audio.chunks > 0 && !window.deskcast.rtc.pc &&
				!(function (s) { return s && s.getTracks().length; })(document.getElementById('rtc-audio').srcObject)`) {
				t.Fatal("the sound does not play over /ws/audio alone")
			}
			if n := eval[int](t, ctx, audioSockets); n != 1 {
				t.Errorf("the page opened /ws/audio %d times, want 1", n)
			}
			txt := waitStats(t, ctx, 3*time.Second, "audio      PCM over WebSocket (WebRTC: "+c.why)
			t.Logf("overlay: %s", txt)
			waitSessions(t, base, 0, 3*time.Second)
			if c.name != "offer refused" { // the refused POST logs a 400, as any failed request does
				noConsoleErrors(t, errs)
			}
		})
	}
}
