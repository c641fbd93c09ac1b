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
    controlApply(st);
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


  // ---- Remote control: only once the presenter grants it to this viewer ----
  // Positions go as fractions of the picture (0..1), so the page's size,
  // zoom, letterboxing and the stream's downscale do not matter.
  var stage = document.getElementById('stage');
  var banner = document.getElementById('control-banner');
  var kbdBtn = document.getElementById('btn-kbd');
  var kbd = document.getElementById('kbd');
  var NAMED = ['Enter', 'Backspace', 'Tab', 'Escape', 'ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown',
    'Delete', 'Home', 'End', 'PageUp', 'PageDown', 'Shift', 'Control', 'Alt', 'Meta', ' '];
  var ctl = { ws: null, granted: false, sent: 0, w: 0, h: 0, held: {} };
  window.deskcast.control = ctl;

  function controlApply(st) {
    var c = st.control || {};
    ctl.w = st.width; ctl.h = st.height;
    var on = !!c.mode && !c.unavailable && st.mode !== 'audio';
    if (on && !ctl.ws) controlConnect();
    if (!on && ctl.ws) { var ws = ctl.ws; ctl.ws = null; ws.close(); setGranted(false); }
  }
  function controlConnect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/control?v=' + id + auth);
    ctl.ws = ws;
    ws.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.type === 'control' && ctl.ws === ws) setGranted(!!m.granted);
    };
    ws.onclose = function () { if (ctl.ws === ws) { ctl.ws = null; setGranted(false); } };
  }
  function setGranted(g) {
    if (!g) releaseKeys();
    ctl.granted = g;
    banner.hidden = !g;
    kbdBtn.hidden = !g;
    document.body.className = g ? 'controlling' : '';
  }
  function send(m) {
    if (!ctl.granted || !ctl.ws || ctl.ws.readyState !== 1) return;
    ctl.ws.send(JSON.stringify(m));
    ctl.sent++;
  }
  function trunc(v) { return v < 0 ? Math.ceil(v) : Math.floor(v); }
  function clamp01(v) { return Math.max(0, Math.min(0.99999, v)); }
  // frac maps a point of the page to fractions of the shown picture: null
  // outside it, or (clamp) the nearest edge, so a drag that ends outside still lets go.
  function frac(cx, cy, clamp) {
    var r = img.getBoundingClientRect();
    var nw = img.naturalWidth || ctl.w, nh = img.naturalHeight || ctl.h;
    if (!nw || !nh || !r.width || !r.height) return null;
    var s = Math.min(r.width / nw, r.height / nh), w = nw * s, h = nh * s;
    var x = (cx - r.left - (r.width - w) / 2) / w, y = (cy - r.top - (r.height - h) / 2) / h;
    if (!clamp && (x < 0 || y < 0 || x > 1 || y > 1)) return null;
    return { x: clamp01(x), y: clamp01(y) };
  }
  function pointer(type, cx, cy, extra) {
    var p = frac(cx, cy, type === 'up');
    if (!p) return false;
    var m = { t: type, x: p.x, y: p.y };
    for (var k in extra) m[k] = extra[k];
    send(m);
    return true;
  }

  // Mouse and pen: what the hand does, as it does it.
  var mouseDown = {};
  function isTouch(e) { return e.pointerType === 'touch'; }
  stage.addEventListener('pointerdown', function (e) {
    if (!ctl.granted) return;
    e.preventDefault();
    if (isTouch(e)) return touchDown(e);
    pendingMove = null;
    if (pointer('down', e.clientX, e.clientY, { b: e.button })) {
      mouseDown[e.button] = true;
      if (stage.setPointerCapture) stage.setPointerCapture(e.pointerId);
    }
  });
  var pendingMove = null;
  stage.addEventListener('pointermove', function (e) {
    if (!ctl.granted) return;
    if (isTouch(e)) return touchMove(e);
    // At most one move a frame: the latest position wins.
    if (!pendingMove) {
      (window.requestAnimationFrame || setTimeout)(function () {
        var m = pendingMove;
        pendingMove = null;
        if (m) pointer('move', m.x, m.y);
      });
    }
    pendingMove = { x: e.clientX, y: e.clientY };
  });
  stage.addEventListener('pointerup', function (e) {
    if (!ctl.granted) return;
    e.preventDefault();
    if (isTouch(e)) return touchUp(e);
    if (!mouseDown[e.button]) return;
    delete mouseDown[e.button];
    pendingMove = null;
    pointer('up', e.clientX, e.clientY, { b: e.button });
  });
  stage.addEventListener('pointercancel', function (e) { if (isTouch(e)) touchUp(e); });
  stage.addEventListener('contextmenu', function (e) { if (ctl.granted) e.preventDefault(); });
  var wheelAcc = { x: 0, y: 0 };
  stage.addEventListener('wheel', function (e) {
    if (!ctl.granted) return;
    e.preventDefault();
    var unit = e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 800 : 1;
    wheelAcc.x += e.deltaX * unit;
    wheelAcc.y += e.deltaY * unit;
    var dx = trunc(wheelAcc.x / 100), dy = trunc(wheelAcc.y / 100);
    if (!dx && !dy) return;
    wheelAcc.x -= dx * 100;
    wheelAcc.y -= dy * 100;
    pointer('wheel', e.clientX, e.clientY, { dx: Math.max(-10, Math.min(10, dx)), dy: Math.max(-10, Math.min(10, dy)) });
  }, { passive: false });

  // Touch: tap = click, long press = right click, one finger drags, two scroll.
  var touches = {}, nTouch = 0, one = null, scroll = null;
  function touchDown(e) {
    touches[e.pointerId] = { x: e.clientX, y: e.clientY };
    nTouch++;
    if (nTouch === 1) {
      one = { id: e.pointerId, x: e.clientX, y: e.clientY, drag: false, long: false };
      one.timer = setTimeout(function () {
        if (one && !one.drag) {
          one.long = true;
          pointer('down', one.x, one.y, { b: 2 });
          pointer('up', one.x, one.y, { b: 2 });
        }
      }, 600);
    } else if (nTouch === 2) {
      endOne();
      scroll = mid();
    }
  }
  function mid() {
    var x = 0, y = 0, n = 0;
    for (var k in touches) { x += touches[k].x; y += touches[k].y; n++; }
    return { x: x / n, y: y / n, ax: 0, ay: 0 };
  }
  function touchMove(e) {
    if (!touches[e.pointerId]) return;
    touches[e.pointerId] = { x: e.clientX, y: e.clientY };
    if (scroll) {
      var m = mid();
      scroll.ax += scroll.x - m.x;
      scroll.ay += scroll.y - m.y;
      scroll.x = m.x; scroll.y = m.y;
      var dx = trunc(scroll.ax / 40), dy = trunc(scroll.ay / 40);
      if (dx || dy) {
        scroll.ax -= dx * 40; scroll.ay -= dy * 40;
        pointer('wheel', m.x, m.y, { dx: Math.max(-10, Math.min(10, dx)), dy: Math.max(-10, Math.min(10, dy)) });
      }
      return;
    }
    if (!one || one.id !== e.pointerId || one.long) return;
    if (!one.drag && Math.abs(e.clientX - one.x) + Math.abs(e.clientY - one.y) > 10) {
      clearTimeout(one.timer);
      one.drag = pointer('down', one.x, one.y, { b: 0 });
    }
    if (one.drag) {
      pointer('move', e.clientX, e.clientY);
      one.x = e.clientX; one.y = e.clientY; // a second finger ends the drag here, not where it began
    }
  }
  function endOne(e) {
    if (!one) return;
    clearTimeout(one.timer);
    var x = e ? e.clientX : one.x, y = e ? e.clientY : one.y;
    if (one.drag) {
      pointer('up', x, y, { b: 0 });
    } else if (!one.long && e) {
      pointer('down', one.x, one.y, { b: 0 });
      pointer('up', one.x, one.y, { b: 0 });
    }
    one = null;
  }
  function touchUp(e) {
    if (!touches[e.pointerId]) return;
    delete touches[e.pointerId];
    nTouch--;
    if (one && one.id === e.pointerId) endOne(e);
    if (nTouch < 2) scroll = null;
    if (nTouch <= 0) { nTouch = 0; touches = {}; one = null; }
  }

  // Keyboard: named keys go down and up; characters go as text.
  function keyDown(e) {
    if (NAMED.indexOf(e.key) >= 0) {
      ctl.held[e.key] = true;
      send({ t: 'key', k: e.key, down: true });
    } else if (e.key && (e.key.length === 1 || e.key.length === 2 && /^[\uD800-\uDBFF]/.test(e.key))) { // one character, emoji too
      send({ t: 'text', s: e.key });
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }
  function keyUp(e) {
    if (!ctl.granted || NAMED.indexOf(e.key) < 0) return;
    delete ctl.held[e.key];
    send({ t: 'key', k: e.key, down: false });
    e.preventDefault();
  }
  function releaseKeys() {
    for (var k in ctl.held) send({ t: 'key', k: k, down: false });
    ctl.held = {};
  }
  document.addEventListener('keyup', keyUp);
  window.addEventListener('blur', releaseKeys);
  kbdBtn.onclick = function () { kbd.focus(); };
  // Phones' on-screen keyboards often send no usable key: take what lands in the field.
  kbd.addEventListener('input', function () {
    // In pieces of 64 characters (not UTF-16 units: an emoji stays whole).
    var chars = Array.from(kbd.value);
    for (var i = 0; i < chars.length; i += 64) send({ t: 'text', s: chars.slice(i, i + 64).join('') });
    kbd.value = '';
  });

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
  stage.ondblclick = function () { if (!ctl.granted) toggleFullscreen(); };
  document.onkeydown = function (e) {
    if (ctl.granted) {
      if (e.target === kbd && e.key && e.key.length === 1) return; // the field's input event sends it
      keyDown(e);
      return;
    }
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
