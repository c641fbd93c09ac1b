// Deskcast viewer, webrtc.js: the picture as H.264 over WebRTC, signalled
// with WHEP (POST /whep with an SDP offer, DELETE on the answer's Location
// to end it). Receive-only, no ICE servers: on a LAN the host candidates do.
// picture.js decides when to use it and falls back to MJPEG when it fails.
// When the server sends the sound over WebRTC too (status webrtc.audio), the
// session also receives its Opus track, in the same MediaStream as the
// picture, so the browser plays them in step; the <video> starts muted
// (autoplay rules) and sound.js unmutes it after the tap. In audio-only
// mode sound.js opens a session of its own with the sound alone
// (rtc.startSound), played by a hidden <audio>.
(function (dc) {
  'use strict';
  var CONNECT_MS = 3000, DOWN_MS = 2000, STALL_MS = 3000, GATHER_MS = 1000;

  // window.deskcast.rtc: the current session (pc, its <video>, the WHEP
  // resource), and the inbound video's figures from getStats, once a second.
  // player is the element that plays the session's sound: the <video>, or
  // the <audio> of a session with sound alone (soundOnly). The end-to-end
  // tests read them.
  var rtc = dc.rtc = {
    pc: null, video: null, player: null, soundOnly: false, location: '', playing: false,
    stats: null, audioTrack: null, audioStats: null
  };
  var session = 0; // each attempt's number: callbacks from an old one do nothing
  var timers = [], statsTimer = 0, downSince = 0, stallSince = 0, lastDecoded = -1, prev = null, prevAudio = null;
  var onFail = null;

  // onAudio, set by sound.js, is called when a session's sound track comes or goes.
  rtc.onAudio = null;

  // supported reports whether this browser can receive WebRTC video, or why not.
  rtc.unsupported = function () {
    if (!window.RTCPeerConnection) return 'no RTCPeerConnection in this browser';
    if (!RTCPeerConnection.prototype.addTransceiver) return 'this browser\'s WebRTC is too old (no addTransceiver)';
    return '';
  };

  function later(fn, ms) { timers.push(setTimeout(fn, ms)); }

  // fail ends the attempt and tells its owner why, once; then sound.js
  // (which then knows of the failure) routes the sound anew.
  function fail(id, why) {
    if (id !== session) return;
    var cb = onFail;
    halt();
    if (cb) cb(why);
    if (rtc.onAudio) rtc.onAudio();
  }

  // start opens a session: onFrame is called once the first frame is
  // decoded (with the <video> to show), onFail(reason) when it fails at any
  // time; after either failure the session is already stopped. withAudio
  // receives the sound too.
  rtc.start = function (frame, failed, withAudio) {
    halt();
    var id = ++session;
    var pc = newPC(id, failed);
    if (!pc) return;
    reset();
    var tr = pc.addTransceiver('video', { direction: 'recvonly' });
    var atr = withAudio ? pc.addTransceiver('audio', { direction: 'recvonly' }) : null;
    var video = document.createElement('video');
    video.id = 'video';
    video.className = 'screen';
    video.autoplay = video.muted = video.playsInline = true;
    video.setAttribute('autoplay', '');
    video.setAttribute('muted', '');
    video.setAttribute('playsinline', '');
    rtc.video = rtc.player = video;
    if (window.MediaStream && tr.receiver && tr.receiver.track) {
      var tracks = [tr.receiver.track];
      if (atr && atr.receiver && atr.receiver.track) {
        rtc.audioTrack = atr.receiver.track;
        tracks.push(rtc.audioTrack);
      }
      video.srcObject = new MediaStream(tracks);
    } else {
      pc.ontrack = function (e) {
        if (id !== session) return;
        video.srcObject = e.streams[0] || new MediaStream([e.track]);
        if (e.track.kind === 'audio') { rtc.audioTrack = e.track; if (rtc.onAudio) rtc.onAudio(); }
      };
    }
    var shown = false;
    function first() {
      if (shown || id !== session) return;
      shown = true;
      rtc.playing = true;
      frame(video);
    }
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(first);
    else video.addEventListener('playing', first);

    watchState(id, pc, null);
    deadline(id, pc, function () { return shown; }, 'frame decoded');
    negotiate(id, pc, video);
    statsTimer = setInterval(function () { poll(id); }, 1000);
    if (rtc.onAudio) rtc.onAudio();
  };

  // startSound opens a session with the sound alone (audio-only mode),
  // played by el, sound.js's hidden <audio> (Chromium feeds Web Audio from
  // a remote track only while a media element plays it; the tap has let
  // that element play with sound, a new one would need a tap of its own):
  // ready is called once it is connected and the sound flows,
  // failed(reason) when it fails at any time (within 3 s, or later); after
  // a failure the session is already stopped.
  rtc.startSound = function (el, ready, failed) {
    halt();
    // A picture's <video> left over from screen mode goes: this session has none.
    if (rtc.video && rtc.video.parentNode) rtc.video.parentNode.removeChild(rtc.video);
    rtc.video = null;
    var id = ++session;
    var pc = newPC(id, failed);
    if (!pc) return;
    rtc.soundOnly = true;
    reset();
    var tr = pc.addTransceiver('audio', { direction: 'recvonly' });
    rtc.player = el;
    if (window.MediaStream && tr.receiver && tr.receiver.track) {
      rtc.audioTrack = tr.receiver.track;
      el.srcObject = new MediaStream([rtc.audioTrack]);
    } else {
      pc.ontrack = function (e) {
        if (id !== session) return;
        el.srcObject = e.streams[0] || new MediaStream([e.track]);
        rtc.audioTrack = e.track;
        if (rtc.onAudio) rtc.onAudio();
      };
    }
    // Ready once connected and the first packet is in (the track unmutes).
    var connected = false, flowing = false;
    function check() {
      if (rtc.playing || id !== session || !connected || !flowing) return;
      rtc.playing = true;
      ready();
    }
    if (rtc.audioTrack && rtc.audioTrack.muted !== false) {
      rtc.audioTrack.addEventListener('unmute', function () { flowing = true; check(); });
    } else {
      flowing = true;
    }
    watchState(id, pc, function () { connected = true; check(); });
    deadline(id, pc, function () { return rtc.playing; }, 'sound');
    negotiate(id, pc, el);
    statsTimer = setInterval(function () { poll(id); }, 1000);
    if (rtc.onAudio) rtc.onAudio();
  };

  // deadline fails session id unless done() within CONNECT_MS, saying
  // whether it connected and got no `what`, or did not connect at all.
  function deadline(id, pc, done, what) {
    later(function () {
      if (done()) return;
      var s = pc.connectionState || pc.iceConnectionState;
      fail(id, s === 'connected' || s === 'completed' ?
        'no ' + what + ' within ' + CONNECT_MS / 1000 + ' s' :
        'not connected within ' + CONNECT_MS / 1000 + ' s (' + s + ')');
    }, CONNECT_MS);
  }

  // newPC makes session id's PeerConnection, or reports to failed (soon,
  // not from within the call) why there is none and returns null.
  function newPC(id, failed) {
    onFail = failed;
    var why = rtc.unsupported();
    if (why) { later(function () { fail(id, why); }, 0); return null; }
    try {
      rtc.pc = new RTCPeerConnection({});
    } catch (e) {
      later(function () { fail(id, 'RTCPeerConnection: ' + e.message); }, 0);
      return null;
    }
    return rtc.pc;
  }

  function reset() {
    rtc.playing = false;
    rtc.stats = null;
    rtc.audioStats = null;
    rtc.audioTrack = null;
    prev = null; prevAudio = null; lastDecoded = -1; downSince = 0; stallSince = 0;
  }

  // watchState fails the session when its connection closes, or stays
  // failed or disconnected for 2 s; up() is called when it connects.
  function watchState(id, pc, up) {
    function changed() {
      if (id !== session) return;
      var s = pc.connectionState || pc.iceConnectionState;
      if (s === 'failed' || s === 'disconnected' || s === 'closed') {
        if (!downSince) downSince = Date.now();
        if (s === 'closed') fail(id, 'the connection closed');
        else later(function () {
          var now = pc.connectionState || pc.iceConnectionState;
          if (downSince && Date.now() - downSince >= DOWN_MS) fail(id, 'the connection ' + now);
        }, DOWN_MS + 50);
      } else {
        downSince = 0;
        if (up && (s === 'connected' || s === 'completed')) up();
      }
    }
    if ('connectionState' in pc) pc.onconnectionstatechange = changed;
    else pc.oniceconnectionstatechange = changed;
  }

  // negotiate sends the offer (after ICE gathering) and plays el once answered.
  function negotiate(id, pc, el) {
    pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return gathered(pc, GATHER_MS);
    }).then(function () {
      if (id !== session) return;
      post(id, pc.localDescription.sdp, function (answer) {
        pc.setRemoteDescription({ type: 'answer', sdp: answer }).then(function () {
          if (id !== session) return;
          var p = el.play && el.play();
          if (p && p.catch) p.catch(function (e) { fail(id, 'the ' + el.tagName.toLowerCase() + ' does not play: ' + (e.name || e)); });
        }, function (e) { fail(id, 'bad answer: ' + e.message); });
      });
    }).catch(function (e) { fail(id, 'offer: ' + (e && e.message || e)); });
  }

  // gathered resolves once ICE gathering is complete, or after ms.
  function gathered(pc, ms) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') return resolve();
      var t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
      pc.addEventListener('icecandidate', function (e) {
        if (!e.candidate) { clearTimeout(t); resolve(); }
      });
    });
  }

  // withAuth adds the token to a request when the browser keeps no cookie.
  function withAuth(xhr) {
    if (dc.page.auth) xhr.setRequestHeader('Authorization', 'Bearer ' + dc.page.token);
  }

  // post sends the offer to /whep and hands the answer to done.
  function post(id, sdp, done) {
    var xhr = new XMLHttpRequest();
    xhr.open('POST', 'whep?v=' + dc.picture.streamId(), true);
    xhr.timeout = 4000;
    xhr.setRequestHeader('Content-Type', 'application/sdp');
    withAuth(xhr);
    xhr.onload = function () {
      var loc = xhr.getResponseHeader('Location') || '';
      if (id !== session) { if (xhr.status === 201 && loc) end(loc); return; }
      if (xhr.status !== 201) {
        var text = (xhr.responseText || '').replace(/\s+/g, ' ').slice(0, 120);
        return fail(id, 'POST /whep: ' + xhr.status + (text ? ' ' + text : ''));
      }
      rtc.location = loc;
      done(xhr.responseText);
    };
    xhr.onerror = function () { fail(id, 'POST /whep: network error'); };
    xhr.ontimeout = function () { fail(id, 'POST /whep: no answer'); };
    xhr.send(sdp);
  }

  // end deletes the WHEP resource at loc, then calls done (also when there
  // is none, and after 2 s at most); keepalive lets it outlive the page.
  function end(loc, done) {
    var once = function () { if (done) { var d = done; done = null; d(); } };
    if (!loc) return once();
    setTimeout(once, 2000);
    var headers = {};
    if (dc.page.auth) headers.Authorization = 'Bearer ' + dc.page.token;
    if (window.fetch) {
      fetch(loc, { method: 'DELETE', headers: headers, keepalive: true, credentials: 'same-origin' }).then(once, once);
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open('DELETE', loc, true);
    withAuth(xhr);
    xhr.onloadend = once;
    xhr.send();
  }

  // stop ends the session (if any): DELETE on its resource, the PC closed,
  // its <video> emptied. The caller takes the <video> out of the page.
  rtc.stop = function () {
    halt();
    if (rtc.onAudio) rtc.onAudio();
  };
  function halt() {
    session++;
    onFail = null;
    for (var i = 0; i < timers.length; i++) clearTimeout(timers[i]);
    timers = [];
    clearInterval(statsTimer);
    // The connection closes once the server has ended the session: closed
    // first, the server would see it go and answer the DELETE with a 404.
    var pc = rtc.pc;
    end(rtc.location, function () {
      if (pc) { try { pc.close(); } catch (e) { /* closed already */ } }
    });
    rtc.location = '';
    if (rtc.video) { rtc.video.srcObject = null; }
    if (rtc.soundOnly && rtc.player) rtc.player.srcObject = null;
    rtc.player = null;
    rtc.soundOnly = false;
    rtc.pc = null;
    rtc.playing = false;
    rtc.audioTrack = null;
    rtc.audioStats = null;
  }

  // watch is called with each status: a picture that stopped moving while
  // the presenter's screen changes is stuck, and the session fails.
  rtc.watch = function (st) {
    if (!rtc.pc || !rtc.playing || !rtc.stats) return;
    var moving = st.state === 'sharing' && st.fps > 0;
    if (moving && rtc.stats.framesDecoded === lastDecoded) {
      if (!stallSince) stallSince = Date.now();
      else if (Date.now() - stallSince >= STALL_MS) fail(session, 'no frame decoded for ' + STALL_MS / 1000 + ' s');
    } else {
      stallSince = 0;
    }
    lastDecoded = rtc.stats.framesDecoded;
  };

  // poll reads the inbound video's counters into rtc.stats.
  function poll(id) {
    var pc = rtc.pc;
    if (!pc || id !== session || !pc.getStats) return;
    pc.getStats().then(function (report) {
      if (id !== session) return;
      var inb = null, ainb = null, codecs = {};
      report.forEach(function (s) {
        if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') inb = s;
        if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'audio') ainb = s;
        if (s.type === 'codec') codecs[s.id] = s;
      });
      if (ainb) audioStats(ainb, codecs[ainb.codecId], inb);
      if (!inb) return;
      var c = codecs[inb.codecId];
      var now = inb.timestamp || Date.now(), o = {
        codec: c ? c.mimeType.replace(/^video\//i, '').toLowerCase() : '',
        bytes: inb.bytesReceived || 0,
        packets: inb.packetsReceived || 0,
        packetsLost: inb.packetsLost || 0,
        framesDecoded: inb.framesDecoded || 0,
        framesDropped: inb.framesDropped || 0,
        framesReceived: inb.framesReceived || 0,
        keyFrames: inb.keyFramesDecoded || 0,
        nacks: inb.nackCount || 0,
        plis: inb.pliCount || 0,
        width: inb.frameWidth || 0,
        height: inb.frameHeight || 0,
        fps: inb.framesPerSecond || 0,
        decodeTime: inb.totalDecodeTime || 0,
        jitterDelay: inb.jitterBufferDelay || 0,
        jitterCount: inb.jitterBufferEmittedCount || 0,
        decoder: inb.decoderImplementation || '',
        bitrate: 0, decodeMs: 0, jitterMs: 0, time: now
      };
      if (prev) {
        var dt = (now - prev.time) / 1000, df = o.framesDecoded - prev.framesDecoded, dj = o.jitterCount - prev.jitterCount;
        o.bitrate = dt > 0 ? (o.bytes - prev.bytes) * 8 / dt : 0;
        o.decodeMs = df > 0 ? (o.decodeTime - prev.decodeTime) * 1000 / df : prev.decodeMs;
        o.jitterMs = dj > 0 ? (o.jitterDelay - prev.jitterDelay) * 1000 / dj : prev.jitterMs;
      } else {
        o.decodeMs = o.framesDecoded ? o.decodeTime * 1000 / o.framesDecoded : 0;
        o.jitterMs = o.jitterCount ? o.jitterDelay * 1000 / o.jitterCount : 0;
      }
      prev = o;
      rtc.stats = o;
    }, function () {});
  }

  // audioStats reads the inbound sound's counters into rtc.audioStats: its
  // codec, bitrate, jitter buffer, concealed share, and the A/V offset where
  // the browser tells when it plays each track (estimatedPlayoutTimestamp:
  // the sender's wall clock of what is playing now; Chromium has it).
  function audioStats(a, c, v) {
    var now = a.timestamp || Date.now(), o = {
      codec: c ? c.mimeType.toLowerCase() : '',
      bytes: a.bytesReceived || 0,
      packets: a.packetsReceived || 0,
      packetsLost: a.packetsLost || 0,
      jitterDelay: a.jitterBufferDelay || 0,
      jitterCount: a.jitterBufferEmittedCount || 0,
      samples: a.totalSamplesReceived || 0,
      concealed: a.concealedSamples || 0,
      concealments: a.concealmentEvents || 0,
      level: a.audioLevel || 0,
      avMs: null, bitrate: 0, jitterMs: 0, concealedPct: 0, time: now
    };
    if (v && a.estimatedPlayoutTimestamp && v.estimatedPlayoutTimestamp) {
      // Positive: the sound plays later than the picture captured with it.
      o.avMs = v.estimatedPlayoutTimestamp - a.estimatedPlayoutTimestamp;
    }
    var p = prevAudio;
    if (p) {
      var dt = (now - p.time) / 1000, dj = o.jitterCount - p.jitterCount;
      o.bitrate = dt > 0 ? (o.bytes - p.bytes) * 8 / dt : 0;
      o.jitterMs = dj > 0 ? (o.jitterDelay - p.jitterDelay) * 1000 / dj : p.jitterMs;
    } else {
      o.jitterMs = o.jitterCount ? o.jitterDelay * 1000 / o.jitterCount : 0;
    }
    o.concealedPct = o.samples ? o.concealed * 100 / o.samples : 0;
    prevAudio = o;
    rtc.audioStats = o;
  }

  // The session ends with the page. Nothing starts another: a page back
  // from the back-forward cache opens one as it would at first.
  window.addEventListener('pagehide', function () { if (rtc.pc) halt(); });
})(window.deskcast);
