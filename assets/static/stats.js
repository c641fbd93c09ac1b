// Deskcast viewer, stats.js: the statistics overlay (the Stats button, the S
// key, or ?stats=1 in the address).
(function (dc) {
  'use strict';
  var statsBox = document.getElementById('stats');
  var lastBytes = 0, lastPoll = 0;
  var stats = dc.stats = {};

  function fmtBytes(n) {
    if (n > 1e6) return (n / 1e6).toFixed(1) + ' MB';
    if (n > 1e3) return (n / 1e3).toFixed(0) + ' kB';
    return n + ' B';
  }

  // shown reports whether the overlay is on screen.
  stats.shown = function () { return !statsBox.hidden; };
  stats.toggle = function () { statsBox.hidden = !statsBox.hidden; };

  // picture returns the overlay's lines on the picture: for WebRTC from the
  // browser's own counters (webrtc.js reads getStats once a second), for
  // MJPEG from the server's counters for this page's stream.
  function picture(st, rtt) {
    var pic = dc.picture, r = dc.rtc.stats;
    if (!pic.video) return 'picture    none (audio only)\n';
    if (pic.transport === 'webrtc') {
      var head = 'transport  WebRTC' + (dc.rtc.playing ? '' : ' (connecting…)') + '\n';
      if (!r) return head;
      // Capture and encode on the presenter, half the round trip, the jitter buffer and a frame's decode.
      var lat = st.grab_ms + st.encode_ms + rtt / 2 + r.jitterMs + r.decodeMs;
      return head +
        'codec      ' + (r.codec || '?') + (r.decoder ? ' (' + r.decoder + ')' : '') + '\n' +
        'fps        ' + Math.round(r.fps) + ' (capture ' + st.fps + ')\n' +
        'resolution ' + (r.width || st.width) + '×' + (r.height || st.height) + '\n' +
        'latency    ≈' + Math.round(lat) + ' ms (rtt ' + Math.round(rtt) + ' ms)\n' +
        'bitrate    ' + (r.bitrate / 1e6).toFixed(2) + ' Mbit/s\n' +
        'decode     ' + r.decodeMs.toFixed(1) + ' ms/frame\n' +
        'jitter buf ' + Math.round(r.jitterMs) + ' ms\n' +
        'lost       ' + r.packetsLost + ' packets (' + r.nacks + ' NACKs, ' + r.plis + ' PLIs)\n' +
        'dropped    ' + r.framesDropped + ' frames\n' +
        'decoded    ' + r.framesDecoded + ' frames (' + r.keyFrames + ' key), ' + fmtBytes(r.bytes) + '\n';
    }
    var you = st.you || { fps: 0, frames: 0, dropped: 0, bytes: 0 };
    var now = Date.now();
    var rate = lastPoll ? (you.bytes - lastBytes) * 8 / ((now - lastPoll) / 1000) : 0;
    lastBytes = you.bytes;
    lastPoll = now;
    // Capture and encode time on the presenter, half the round trip, and a frame's decode.
    var latency = st.grab_ms + st.encode_ms + rtt / 2 + 5;
    return 'transport  MJPEG' + (pic.why ? ' (WebRTC: ' + pic.why + ')' : '') + '\n' +
      'codec      jpeg\n' +
      'fps        ' + you.fps + ' (capture ' + st.fps + ')\n' +
      'resolution ' + st.width + '×' + st.height + '\n' +
      'latency    ≈' + Math.round(latency) + ' ms (rtt ' + Math.round(rtt) + ' ms)\n' +
      'bitrate    ' + (rate / 1e6).toFixed(2) + ' Mbit/s\n' +
      'received   ' + you.frames + ' frames, ' + fmtBytes(you.bytes) + '\n' +
      'dropped    ' + you.dropped + '\n';
  }

  // rtcAudio is the overlay's line on sound over WebRTC, from getStats.
  function rtcAudio(a) {
    if (!a) return '\naudio      WebRTC (waiting for figures)';
    return '\naudio      WebRTC ' + (a.codec.replace(/^audio\//, '') || '?') + ', ' + Math.round(a.bitrate / 1000) + ' kbit/s, ' +
      'jitter buf ' + Math.round(a.jitterMs) + ' ms, concealed ' + a.concealedPct.toFixed(2) + '% (' + a.concealments + '×), ' +
      'lost ' + a.packetsLost + (a.avMs === null ? '' : ', A/V ' + (a.avMs >= 0 ? '+' : '') + Math.round(a.avMs) + ' ms');
  }

  // render fills the overlay from a status and the round trip (ms) that fetched it.
  stats.render = function (st, rtt) {
    var audio = dc.audio;
    statsBox.textContent = picture(st, rtt) +
      'viewers    ' + st.viewers + '\n' +
      'monitor    ' + st.monitor +
      (audio.wanted && audio.via === 'webrtc' ? rtcAudio(dc.rtc.audioStats) :
      audio.wanted && audio.via === '' ? '\naudio      WebRTC (connecting…)' :
      audio.ctx && audio.wanted ?
        '\naudio      PCM over WebSocket' + (audio.why ? ' (WebRTC: ' + audio.why + ')' : '') + ', ≈' + Math.round((audio.depth + (audio.ctx.baseLatency || 0) + (audio.ctx.outputLatency || 0) + rtt / 2000 + 0.01) * 1000) +
        ' ms delay (buffer ' + Math.round(audio.target * 1000) + ' ms, underruns ' + audio.underruns + ', trimmed ' + audio.trimmed + ')' : '') +
      (st.audio && st.audio.state !== 'off' ? '\nsound      ' + st.audio.state + (st.audio.device ? ' — ' + st.audio.device : '') : '');
  };

  // init wires the Stats button and reads ?stats=1.
  stats.init = function () {
    document.getElementById('btn-stats').onclick = stats.toggle;
    if (dc.page.param('stats') === '1') statsBox.hidden = false;
  };
})(window.deskcast);
