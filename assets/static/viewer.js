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
  var lastFrames = -1, stallSince = 0, failures = 0;

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
    img.src = 'stream.mjpg?v=' + id + '&g=' + generation + auth;
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
      'monitor    ' + st.monitor;
  }

  function onStatus(st, rtt) {
    failures = 0;
    if (!connected) {
      connected = true;
      connect();
    }
    if (st.state === 'paused') {
      show('Paused', 'The presenter paused sharing. The picture comes back when they resume.');
    } else if (st.state === 'error') {
      show('Screen capture problem', st.error + ' — retrying…');
    } else if (lastFrames < 0 && !st.you) {
      show('Connecting…', '');
    } else {
      hide();
    }
    // A stream that stopped moving while the presenter's screen changes is stuck: reopen it.
    var frames = st.you ? st.you.frames : 0;
    if (st.state === 'sharing' && st.fps > 0 && frames === lastFrames) {
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
    xhr.open('GET', 'api/status?v=' + id + auth, true);
    xhr.timeout = 4000;
    xhr.onload = function () {
      if (xhr.status === 401) {
        expired = true;
        disconnect();
        show('This link has expired', 'Sharing was restarted. Scan the new QR code or ask for the new link.');
        return;
      }
      if (xhr.status !== 200) return onFail();
      var st;
      try { st = JSON.parse(xhr.responseText); } catch (e) { return onFail(); }
      onStatus(st, Date.now() - t0);
      setTimeout(poll, 1000);
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
    var k = (e.key || '').toLowerCase();
    if (k === 's') toggleStats();
    if (k === 'f') toggleFullscreen();
  };
  if (param('stats') === '1') statsBox.hidden = false;

  show('Connecting…', '');
  connected = true;
  connect();
  poll();
})();
