// Deskcast viewer, sound.js: the sound, with the mute and volume controls,
// the level meter and the audio-only card. Over WebRTC, when the server
// sends it there (status webrtc.audio), the sound is the session's Opus
// track, played by the picture's <video> in step with the picture: the tap
// unmutes the <video>, mute and volume act on it, and an AnalyserNode on
// the track feeds the meter (its output silenced: the <video> plays). Else
// (MJPEG, audio-only mode, no Opus on the server) it is PCM over a
// WebSocket (/ws/audio), scheduled as AudioBufferSourceNodes.
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
    via: '', rtcSource: null, rtcTrack: null // via: 'webrtc' or 'ws' while playing
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
    audio.wanted = true;
    soundBtn.hidden = true;
    soundControls.hidden = false;
    route();
  }
  // route plays the sound the way the page can now: the WebRTC session's
  // track when it has one, else the WebSocket. Called on the tap, on each
  // status and whenever a WebRTC session's sound comes or goes.
  function route() {
    if (!audio.wanted || !audio.ctx) return;
    var track = dc.rtc.audioTrack, v = dc.rtc.video;
    if (track && v && dc.picture.transport === 'webrtc' && window.MediaStream && audio.ctx.createMediaStreamSource) {
      if (audio.ws) { var ws = audio.ws; audio.ws = null; ws.close(); }
      audio.via = 'webrtc';
      v.muted = audio.muted;
      v.volume = Number(volume.value);
      if (audio.rtcTrack !== track) {
        if (audio.rtcSource) audio.rtcSource.disconnect();
        // Chromium feeds WebAudio from a remote track only while a media
        // element plays it: the <video> does.
        audio.rtcSource = audio.ctx.createMediaStreamSource(new MediaStream([track]));
        audio.rtcSource.connect(audio.analyser);
        audio.rtcTrack = track;
      }
      audio.gain.gain.value = 0; // the <video> plays it; WebAudio only measures it
      var p = v.play && v.play();
      if (p && p.catch) p.catch(function () {});
      return;
    }
    dropRTC();
    audio.via = 'ws';
    audio.gain.gain.value = audio.muted ? 0 : Number(volume.value);
    audioConnect();
  }
  function dropRTC() {
    if (audio.rtcSource) audio.rtcSource.disconnect();
    audio.rtcSource = audio.rtcTrack = null;
    if (dc.rtc.video) dc.rtc.video.muted = true;
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
    if (audio.via === 'webrtc' && dc.rtc.video) dc.rtc.video.muted = audio.muted;
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
      if (audio.via === 'webrtc' && dc.rtc.video) dc.rtc.video.volume = Number(volume.value);
      else if (audio.gain && !audio.muted) audio.gain.gain.value = Number(volume.value);
    };
    dc.rtc.onAudio = route;
  };
})(window.deskcast);
