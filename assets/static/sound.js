// Deskcast viewer, sound.js: the sound, with the mute and volume controls,
// the level meter and the audio-only card. Over WebRTC, when the server
// sends it there (status webrtc.audio), the sound is the session's Opus
// track, played by the picture's <video> in step with the picture: the tap
// unmutes the <video>, mute and volume act on it, and an AnalyserNode on
// the track feeds the meter (its output silenced: the <video> plays). In
// audio-only mode the page opens a WebRTC session with the sound alone
// after the tap (rtc.startSound), played the same way by a hidden <audio>;
// a switch of mode ends one session and opens the other kind. Else (MJPEG,
// no Opus on the server, a sound-only session that failed, compatibility
// mode) it is PCM over a WebSocket (/ws/audio), scheduled as
// AudioBufferSourceNodes.
//
// A plain-HTTP LAN page has no AudioWorklet, so each 10 ms chunk becomes a
// buffer scheduled right after the previous one. The jitter buffer (how far
// ahead we schedule) adapts between 60 and 120 ms: an underrun raises it,
// a calm spell lowers it. A buffer grown past it (clock drift, a burst after
// a network hiccup) is brought back by playing chunks 3% fast (half a
// semitone, for a moment, and no clicks), and only a large excess is
// trimmed by skipping a chunk.
(function (dc) {
  'use strict';
  var soundBox = document.getElementById('sound');
  var soundBtn = document.getElementById('btn-sound');
  var soundControls = document.getElementById('sound-controls');
  var muteBtn = document.getElementById('btn-mute');
  var volume = document.getElementById('volume');
  var audioCard = document.getElementById('audio-card');
  var audioDevice = document.getElementById('audio-device');
  var meterBar = document.getElementById('meter-bar');

  // window.deskcast.audio is the player's state; the stats overlay and the
  // end-to-end tests read it.
  var audio = dc.audio = {
    ctx: null, gain: null, analyser: null, ws: null, wanted: false, muted: false,
    rate: 48000, channels: 2, playhead: 0, target: 0.08, underruns: 0, trimmed: 0,
    chunks: 0, lastUnderrun: 0, retry: 0, depth: 0,
    via: '', rtcSource: null, rtcTrack: null, el: null, // via: 'webrtc' or 'ws' while playing
    // In audio-only mode: why the sound is not over WebRTC ('' when it is),
    // and whether a sound-only session failed on this page (it then keeps to
    // /ws/audio until reloaded), with when a forced one may try again.
    why: '', fellBack: false, rtcWhy: '', retryAt: 0
  };
  var sound = dc.sound = {};

  function audioStart() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC || !window.WebSocket) {
      soundBtn.textContent = 'Sound is not supported by this browser';
      return;
    }
    if (!audio.ctx) {
      audio.ctx = new AC({ latencyHint: 'interactive' });
      audio.analyser = audio.ctx.createAnalyser();
      audio.analyser.fftSize = 4096;
      audio.gain = audio.ctx.createGain();
      audio.analyser.connect(audio.gain);
      audio.gain.connect(audio.ctx.destination);
    }
    if (audio.ctx.resume) audio.ctx.resume();
    if (!audio.el) {
      // The <audio> that plays a sound-only WebRTC session (audio-only mode),
      // made here and played once so that the tap lets it play with sound
      // later (a browser asks each new media element for a tap of its own).
      audio.el = document.createElement('audio');
      audio.el.id = 'rtc-audio';
      audio.el.hidden = true;
      document.body.appendChild(audio.el);
      if (window.MediaStream) audio.el.srcObject = new MediaStream();
      var p = audio.el.play && audio.el.play();
      if (p && p.catch) p.catch(function () {});
    }
    audio.wanted = true;
    soundBtn.hidden = true;
    soundControls.hidden = false;
    route();
  }
  // way says how the sound travels now: 'picture' (in the picture's WebRTC
  // session, once it has started), 'rtc' (a session with the sound alone,
  // in audio-only mode), 'ws', or '' (audio-only mode while the page has
  // lost the presenter and holds no session: wait for it). In audio-only mode audio.why says
  // why not WebRTC.
  function way() {
    var pic = dc.picture, w = (pic.status || {}).webrtc;
    audio.why = '';
    if (!window.MediaStream || !audio.ctx.createMediaStreamSource) return 'ws';
    if (pic.video) return pic.transport === 'webrtc' && w && w.audio ? 'picture' : 'ws';
    audio.why = soundWhy(pic, w);
    if (audio.why) return 'ws';
    return pic.connected || dc.rtc.soundOnly ? 'rtc' : '';
  }
  // soundWhy returns why audio-only mode cannot play over WebRTC, or ''.
  function soundWhy(pic, w) {
    if (!w) return 'not offered by this server';
    if (!w.available) return w.why || 'not available on the server';
    if (!w.audio) return 'no sound over WebRTC on this server';
    if (pic.forced === 'mjpeg') return 'off by ?transport=mjpeg';
    if (pic.forced === 'webrtc') return ''; // forced: no fallback, a failed session is retried
    if (pic.compat) return 'off in compatibility mode';
    var no = dc.rtc.unsupported();
    if (no) return no;
    if (audio.fellBack) return audio.rtcWhy;
    if (pic.fellBack) return pic.why; // the picture's WebRTC failed on this page
    return '';
  }
  // route plays the sound the way the page can now (see way). Called on the
  // tap, on each status and whenever a WebRTC session's sound comes or goes.
  function route() {
    if (!audio.wanted || !audio.ctx) return;
    var how = way(), r = dc.rtc;
    if (how === 'rtc' && !(r.pc && r.soundOnly)) {
      closeWS();
      dropRTC();
      if (Date.now() >= audio.retryAt) r.startSound(audio.el, function () {}, soundFailed);
      return; // the session's start routes again
    }
    if (how === 'ws') {
      if (r.soundOnly) { r.stop(); return; } // which routes again
      dropRTC();
      audio.via = 'ws';
      audio.gain.gain.value = audio.muted ? 0 : Number(volume.value);
      audioConnect();
      return;
    }
    closeWS();
    var track = r.audioTrack, el = r.player;
    if (!how || !track || !el || (how === 'picture') === r.soundOnly) {
      dropRTC(); // waiting for the session
      return;
    }
    audio.via = 'webrtc';
    el.muted = audio.muted;
    el.volume = Number(volume.value);
    if (audio.rtcTrack !== track) {
      if (audio.rtcSource) audio.rtcSource.disconnect();
      // Chromium feeds WebAudio from a remote track only while a media
      // element plays it: the <video>, or the sound-only session's <audio>.
      audio.rtcSource = audio.ctx.createMediaStreamSource(new MediaStream([track]));
      audio.rtcSource.connect(audio.analyser);
      audio.rtcTrack = track;
    }
    audio.gain.gain.value = 0; // the element plays it; WebAudio only measures it
    var p = el.play && el.play();
    if (p && p.catch) p.catch(function () {});
  }
  // soundFailed: the sound-only session failed (the session is stopped; route follows).
  function soundFailed(why) {
    audio.rtcWhy = why;
    if (dc.picture.forced === 'webrtc') audio.retryAt = Date.now() + 2000;
    else if (dc.picture.connected) audio.fellBack = true;
  }
  function closeWS() {
    if (audio.ws) { var ws = audio.ws; audio.ws = null; ws.close(); }
  }
  function dropRTC() {
    if (audio.rtcSource) audio.rtcSource.disconnect();
    audio.rtcSource = audio.rtcTrack = null;
    if (dc.rtc.player) dc.rtc.player.muted = true;
    if (audio.via === 'webrtc') audio.via = '';
  }
  function audioConnect() {
    if (!audio.wanted || audio.ws || audio.via !== 'ws') return;
    var ws = new WebSocket(dc.page.wsURL('/ws/audio'));
    ws.binaryType = 'arraybuffer';
    audio.ws = ws;
    ws.onmessage = function (ev) {
      if (audio.ws !== ws) return; // a socket this page has already replaced
      if (typeof ev.data === 'string') {
        var f = JSON.parse(ev.data);
        // A new device: keep the schedule; what is queued plays out first.
        if (f.type === 'format') { audio.rate = f.rate; audio.channels = f.channels; }
        return;
      }
      audio.retry = 0;
      audioPlay(ev.data);
    };
    ws.onclose = function () {
      if (audio.ws !== ws) return;
      audio.ws = null;
      if (!audio.wanted) return;
      audio.retry = Math.min(audio.retry + 1, 5);
      setTimeout(audioConnect, 500 * audio.retry);
    };
  }
  function audioStop() {
    audio.wanted = false;
    audio.via = '';
    dropRTC();
    if (dc.rtc.soundOnly) dc.rtc.stop();
    if (audio.ws) audio.ws.close();
    audio.ws = null;
  }
  function audioPlay(data) {
    var ctx = audio.ctx, ch = audio.channels;
    var pcm = new Int16Array(data, 4);
    var frames = Math.floor(pcm.length / ch);
    if (!frames) return;
    audio.chunks++;
    var now = ctx.currentTime;
    if (audio.playhead < now + 0.005) {
      // Ran dry (or first chunk): start again one jitter buffer ahead.
      if (audio.playhead > 0) {
        audio.underruns++;
        audio.lastUnderrun = now;
        audio.target = Math.min(audio.target + 0.01, 0.12);
      }
      audio.playhead = now + audio.target;
    } else if (now - audio.lastUnderrun > 10 && audio.target > 0.06) {
      audio.target = Math.max(audio.target - 0.005, 0.06);
      audio.lastUnderrun = now;
    }
    audio.depth = audio.playhead - now;
    if (audio.depth > audio.target + 0.1) {
      audio.trimmed++; // far ahead of the target: skip this chunk
      return;
    }
    var rate = audio.depth > audio.target + 0.01 ? 1.03 : 1;
    var buf = ctx.createBuffer(ch, frames, audio.rate);
    for (var c = 0; c < ch; c++) {
      var out = buf.getChannelData(c);
      for (var i = 0; i < frames; i++) out[i] = pcm[i * ch + c] / 32768;
    }
    var src = ctx.createBufferSource();
    src.buffer = buf;
    src.playbackRate.value = rate;
    src.connect(audio.analyser);
    src.start(audio.playhead);
    audio.playhead += buf.duration / rate;
  }

  // The loudest frequency the page is playing, in Hz (the level meter's analyser).
  dc.peakHz = function () {
    if (!audio.analyser) return 0;
    var bins = new Float32Array(audio.analyser.frequencyBinCount);
    audio.analyser.getFloatFrequencyData(bins);
    var best = 0;
    for (var i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    return bins[best] < -70 ? 0 : best * audio.ctx.sampleRate / audio.analyser.fftSize;
  };
  function level() {
    if (!audio.analyser) return 0;
    var t = new Float32Array(audio.analyser.fftSize);
    audio.analyser.getFloatTimeDomainData(t);
    var sum = 0;
    for (var i = 0; i < t.length; i++) sum += t[i] * t[i];
    return Math.sqrt(sum / t.length);
  }
  function meterLoop() {
    if (!audioCard.hidden) {
      var db = 20 * Math.log(Math.max(level(), 1e-5)) / Math.LN10;
      meterBar.style.width = Math.max(0, Math.min(100, (db + 60) * 100 / 60)) + '%';
    }
    (window.requestAnimationFrame || function (f) { setTimeout(f, 50); })(meterLoop);
  }

  // toggleMute mutes or unmutes (the Mute button, and the M key).
  sound.toggleMute = function () {
    audio.muted = !audio.muted;
    if (audio.via === 'webrtc' && dc.rtc.player) dc.rtc.player.muted = audio.muted;
    else if (audio.gain) audio.gain.gain.value = audio.muted ? 0 : Number(volume.value);
    muteBtn.textContent = audio.muted ? 'Unmute' : 'Mute';
  };

  // stop closes the sound socket for good (the page has lost its access).
  sound.stop = audioStop;

  // applyMode is called with each status: it shows the sound controls and
  // the audio-only card as the mode asks.
  sound.applyMode = function (st) {
    var a = st.audio || { state: 'off' };
    var soundShared = a.state !== 'off' && a.state !== 'none';
    soundBox.hidden = !soundShared;
    if (!soundShared && audio.wanted) {
      audioStop();
      soundBtn.hidden = false;
      soundControls.hidden = true;
    } else if (soundShared && audio.wanted) {
      route();
    }
    audioCard.hidden = st.mode !== 'audio' || st.state === 'paused';
    audioDevice.textContent =
      a.state === 'error' ? 'Sound problem: ' + a.error + ' — retrying…' : (a.device || '');
  };

  // init starts the level meter and wires the sound controls.
  sound.init = function () {
    meterLoop();
    soundBtn.onclick = audioStart;
    muteBtn.onclick = sound.toggleMute;
    volume.oninput = function () {
      if (audio.via === 'webrtc' && dc.rtc.player) dc.rtc.player.volume = Number(volume.value);
      else if (audio.gain && !audio.muted) audio.gain.gain.value = Number(volume.value);
    };
    dc.rtc.onAudio = route;
  };
})(window.deskcast);
