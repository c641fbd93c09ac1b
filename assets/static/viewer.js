// Deskcast viewer. Plain ES5 on purpose: TV and old phone browsers must run it.
(function () {
  'use strict';
  var img = document.getElementById('screen');
  var card = document.getElementById('card');
  var cardTitle = document.getElementById('card-title');
  var cardText = document.getElementById('card-text');
  var statsBox = document.getElementById('stats');

  function randomId() {
    var s = '', c = 'abcdefghijklmnopqrstuvwxyz0123456789';
    for (var i = 0; i < 12; i++) s += c.charAt(Math.floor(Math.random() * c.length));
    return s;
  }
  function param(name) {
    var m = new RegExp('[?&]' + name + '=([^&]*)').exec(location.search);
    return m ? decodeURIComponent(m[1]) : '';
  }

  // The server set a cookie from ?t=; drop the token from the address bar and history.
  var token = param('t');
  if (token && window.history && history.replaceState) history.replaceState(null, '', location.pathname);
  var auth = (token && navigator.cookieEnabled === false) ? '&t=' + encodeURIComponent(token) : '';
  var id = randomId();
  var generation = 0, connected = false, expired = false;
  var lastFrames = -1, stallSince = 0, failures = 0, missing = 0;
  // Each stream gets an id of its own, so the status of an old one never answers for the new.
  function streamId() { return id + 'g' + generation; }

  function show(title, text) {
    cardTitle.textContent = title;
    cardText.textContent = text || '';
    card.hidden = false;
  }
  function hide() { card.hidden = true; }

  function connect() {
    generation++;
    lastFrames = -1;
    stallSince = 0;
    img.src = 'stream.mjpg?v=' + streamId() + auth;
  }
  function disconnect() {
    img.removeAttribute('src');
    connected = false;
  }
  img.onerror = function () {
    if (!connected) return;
    disconnect();
    show('Reconnecting…', 'The connection to the presenter dropped.');
  };

  // ---- Sound: PCM over a WebSocket, scheduled as AudioBufferSourceNodes ----
  // A plain-HTTP LAN page has no AudioWorklet, so each 10 ms chunk becomes a
  // buffer scheduled right after the previous one. The jitter buffer (how far
  // ahead we schedule) adapts between 60 and 120 ms: an underrun raises it,
  // a calm spell lowers it. A buffer grown past it (clock drift, a burst after
  // a network hiccup) is brought back by playing chunks 3% fast (half a
  // semitone, for a moment, and no clicks), and only a large excess is
  // trimmed by skipping a chunk.
  var soundBox = document.getElementById('sound');
  var soundBtn = document.getElementById('btn-sound');
  var soundControls = document.getElementById('sound-controls');
  var muteBtn = document.getElementById('btn-mute');
  var volume = document.getElementById('volume');
  var audioCard = document.getElementById('audio-card');
  var meterBar = document.getElementById('meter-bar');
  var audio = {
    ctx: null, gain: null, analyser: null, ws: null, wanted: false, muted: false,
    rate: 48000, channels: 2, playhead: 0, target: 0.08, underruns: 0, trimmed: 0,
    chunks: 0, lastUnderrun: 0, retry: 0, depth: 0
  };
  window.deskcast = { audio: audio };

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
    audioConnect();
  }
  function audioConnect() {
    if (!audio.wanted || audio.ws) return;
    var proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    var ws = new WebSocket(proto + location.host + '/ws/audio?v=' + id + auth);
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
  window.deskcast.peakHz = function () {
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
  meterLoop();
  soundBtn.onclick = audioStart;
  muteBtn.onclick = function () {
    audio.muted = !audio.muted;
    if (audio.gain) audio.gain.gain.value = audio.muted ? 0 : Number(volume.value);
    muteBtn.textContent = audio.muted ? 'Unmute' : 'Mute';
  };
  volume.oninput = function () {
    if (audio.gain && !audio.muted) audio.gain.gain.value = Number(volume.value);
  };
  // Called with each status: show the sound controls and the audio-only card as the mode asks.
  var videoOn = true;
  function applyMode(st) {
    var a = st.audio || { state: 'off' };
    var soundShared = a.state !== 'off' && a.state !== 'none';
    soundBox.hidden = !soundShared;
    if (!soundShared && audio.wanted) {
      audioStop();
      soundBtn.hidden = false;
      soundControls.hidden = true;
    } else if (soundShared && audio.wanted && !audio.ws) {
      audioConnect();
    }
    var wantVideo = st.mode !== 'audio';
    if (wantVideo !== videoOn) {
      videoOn = wantVideo;
      if (videoOn) connect(); else img.removeAttribute('src');
    }
    audioCard.hidden = wantVideo || st.state === 'paused';
    document.getElementById('audio-device').textContent =
      a.state === 'error' ? 'Sound problem: ' + a.error + ' — retrying…' : (a.device || '');
  }

  function fmtBytes(n) {
    if (n > 1e6) return (n / 1e6).toFixed(1) + ' MB';
    if (n > 1e3) return (n / 1e3).toFixed(0) + ' kB';
    return n + ' B';
  }

  var lastBytes = 0, lastPoll = 0;
  function render(st, rtt) {
    var you = st.you || { fps: 0, frames: 0, dropped: 0, bytes: 0 };
    var now = Date.now();
    var rate = lastPoll ? (you.bytes - lastBytes) * 8 / ((now - lastPoll) / 1000) : 0;
    lastBytes = you.bytes;
    lastPoll = now;
    // Capture and encode time on the presenter, half the round trip, and a frame's decode.
    var latency = st.grab_ms + st.encode_ms + rtt / 2 + 5;
    statsBox.textContent =
      'fps        ' + you.fps + ' (capture ' + st.fps + ')\n' +
      'resolution ' + st.width + '×' + st.height + '\n' +
      'latency    ≈' + Math.round(latency) + ' ms (rtt ' + Math.round(rtt) + ' ms)\n' +
      'bitrate    ' + (rate / 1e6).toFixed(2) + ' Mbit/s\n' +
      'received   ' + you.frames + ' frames, ' + fmtBytes(you.bytes) + '\n' +
      'dropped    ' + you.dropped + '\n' +
      'viewers    ' + st.viewers + '\n' +
      'monitor    ' + st.monitor +
      (audio.ctx && audio.wanted ?
        '\naudio      ≈' + Math.round((audio.depth + (audio.ctx.baseLatency || 0) + (audio.ctx.outputLatency || 0) + rtt / 2000 + 0.01) * 1000) +
        ' ms delay (buffer ' + Math.round(audio.target * 1000) + ' ms, underruns ' + audio.underruns + ', trimmed ' + audio.trimmed + ')' : '') +
      (st.audio && st.audio.state !== 'off' ? '\nsound      ' + st.audio.state + (st.audio.device ? ' — ' + st.audio.device : '') : '');
  }

  function onStatus(st, rtt) {
    failures = 0;
    if (!connected) {
      connected = true;
      if (videoOn) connect();
    }
    applyMode(st);
    if (st.state === 'paused') {
      show('Paused', 'The presenter paused sharing. The picture comes back when they resume.');
    } else if (st.state === 'error') {
      show('Screen capture problem', st.error + ' — retrying…');
    } else if (videoOn && !(st.you && st.you.frames > 0)) {
      show('Connecting…', '');
    } else {
      hide();
    }
    // A stream the server no longer knows (it dropped us) is reopened after two polls.
    if (videoOn && st.state === 'sharing' && !st.you) {
      if (++missing >= 2) { missing = 0; connect(); }
    } else {
      missing = 0;
    }
    // A stream that stopped moving while the presenter's screen changes is stuck: reopen it.
    var frames = st.you ? st.you.frames : 0;
    if (videoOn && st.state === 'sharing' && st.fps > 0 && frames === lastFrames) {
      if (!stallSince) stallSince = Date.now();
      else if (Date.now() - stallSince > 5000) connect();
    } else {
      stallSince = 0;
    }
    lastFrames = frames;
    if (!statsBox.hidden) render(st, rtt);
  }

  function poll() {
    if (expired) return;
    var xhr = new XMLHttpRequest();
    var t0 = Date.now();
    xhr.open('GET', 'api/status?v=' + streamId() + auth, true);
    xhr.timeout = 4000;
    xhr.onload = function () {
      if (xhr.status === 401) {
        expired = true;
        disconnect();
        audioStop();
        // Sharing restarted, so this browser is a stranger again. With the
        // link's token in hand, open it afresh: the server answers with the
        // viewer page, a PIN or waiting page, or "not valid" for an old link.
        if (token) location.replace('./?t=' + encodeURIComponent(token));
        else show('This link has expired', 'Sharing was restarted. Scan the new QR code or ask for the new link.');
        return;
      }
      if (xhr.status === 403) {
        // The presenter sent this viewer away (or has yet to let it in): the
        // server's page for "/" says which.
        expired = true;
        disconnect();
        audioStop();
        location.replace('./');
        return;
      }
      if (xhr.status !== 200) return onFail();
      var st;
      try { st = JSON.parse(xhr.responseText); } catch (e) { return onFail(); }
      // Schedule the next poll first: an error below must not end the polling.
      setTimeout(poll, 1000);
      onStatus(st, Date.now() - t0);
    };
    xhr.onerror = xhr.ontimeout = onFail;
    xhr.send();
  }
  function onFail() {
    failures++;
    if (connected) disconnect();
    show('Reconnecting…', 'The presenter stopped sharing or the network dropped. This page reconnects by itself.');
    setTimeout(poll, Math.min(1000 * failures, 5000));
  }

  function toggleStats() { statsBox.hidden = !statsBox.hidden; }
  function toggleFullscreen() {
    var d = document, el = d.documentElement;
    if (d.fullscreenElement || d.webkitFullscreenElement) {
      (d.exitFullscreen || d.webkitExitFullscreen).call(d);
    } else if (el.requestFullscreen) {
      el.requestFullscreen();
    } else if (el.webkitRequestFullscreen) {
      el.webkitRequestFullscreen();
    } else if (img.webkitEnterFullscreen) {
      img.webkitEnterFullscreen(); // iPhone
    }
  }
  document.getElementById('btn-stats').onclick = toggleStats;
  document.getElementById('btn-full').onclick = toggleFullscreen;
  document.getElementById('stage').ondblclick = toggleFullscreen;
  document.onkeydown = function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return; // leave the browser's own shortcuts alone
    var k = (e.key || '').toLowerCase();
    if (k === 's') toggleStats();
    if (k === 'f') toggleFullscreen();
    if (k === 'm') muteBtn.onclick();
  };
  if (param('stats') === '1') statsBox.hidden = false;

  show('Connecting…', '');
  connected = true;
  connect();
  poll();
})();
