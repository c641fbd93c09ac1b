// Deskcast viewer, picture.js: the shared screen, shown one of two ways: H.264
// over WebRTC in a <video> (webrtc.js) when the server offers it and the
// browser can, else an MJPEG stream (stream.mjpg) in the page's <img>,
// reopened when it drops, stalls or is forgotten by the server. A WebRTC
// session that fails falls back to MJPEG by itself. ?transport=webrtc or
// ?transport=mjpeg forces one; the Compatibility mode button (remembered in
// localStorage) keeps to MJPEG. Either way the picture comes without the
// pointer (stream.mjpg?pointer=0): pointer.js draws it over the picture.
(function (dc) {
  'use strict';
  var img = document.getElementById('screen');
  var stage = document.getElementById('stage');
  var compatBtn = document.getElementById('btn-compat');
  var COMPAT_KEY = 'deskcast.compat';
  var lastFrames = -1, stallSince = 0, missing = 0, retry = 0;

  // video: the share includes the screen (not audio only); connected: the
  // page reaches the presenter; generation: how many streams it has opened.
  // transport is 'mjpeg' or 'webrtc' (what the page uses now), why the reason
  // it is not WebRTC (for the stats), fellBack whether WebRTC failed on this
  // page (it then keeps to MJPEG until reloaded or switched back).
  var pic = dc.picture = {
    img: img, video: true, connected: false, generation: 0,
    transport: 'mjpeg', why: '', fellBack: false, forced: '', compat: false, status: null
  };

  // Each stream gets an id of its own, so the status of an old one never answers for the new.
  pic.streamId = function () { return dc.page.id + 'g' + pic.generation; };

  // el is the element showing the picture now; width and height its size in pixels.
  pic.el = function () { return pic.transport === 'webrtc' && dc.rtc.video ? dc.rtc.video : img; };
  pic.size = function () {
    var v = pic.el();
    return v === img ? { w: img.naturalWidth, h: img.naturalHeight } : { w: v.videoWidth, h: v.videoHeight };
  };

  // hasFrame reports whether a picture is on screen.
  pic.hasFrame = function (st) {
    if (pic.transport === 'webrtc') return dc.rtc.playing;
    return !!(st.you && st.you.frames > 0);
  };

  // choice is what the page should use now: 'webrtc', or 'mjpeg' and why.
  function choice() {
    var st = pic.status || {}, w = st.webrtc;
    if (pic.forced === 'mjpeg') return { t: 'mjpeg', why: 'off by ?transport=mjpeg' };
    if (pic.forced === 'webrtc') return { t: 'webrtc' };
    if (pic.compat) return { t: 'mjpeg', why: 'off in compatibility mode' };
    if (pic.fellBack) return { t: 'mjpeg', why: pic.why };
    if (!w) return { t: 'mjpeg', why: 'not offered by this server' };
    if (!w.available) return { t: 'mjpeg', why: w.why || 'not available on the server' };
    var no = dc.rtc.unsupported();
    if (no) return { t: 'mjpeg', why: no };
    return { t: 'webrtc' };
  }

  // dropVideo ends the picture's WebRTC session. A session with the sound
  // alone (audio-only mode) is sound.js's, and stays.
  function dropVideo() {
    if (!dc.rtc.soundOnly) dc.rtc.stop();
    var v = dc.rtc.video;
    if (v && v.parentNode) v.parentNode.removeChild(v);
    dc.rtc.video = null;
  }

  // Each sets the transport first: sound.js, told when the old session
  // ends, routes the sound by it.
  function mjpeg(why) {
    pic.transport = 'mjpeg';
    dropVideo();
    pic.why = why;
    lastFrames = -1;
    stallSince = 0;
    img.src = 'stream.mjpg?pointer=0&v=' + pic.streamId() + dc.page.auth;
  }

  function webrtc() {
    pic.transport = 'webrtc';
    dropVideo();
    img.removeAttribute('src');
    pic.why = '';
    var gen = pic.generation;
    var st = pic.status || {};
    dc.rtc.start(function () {
      dc.page.hide();
    }, function (why) {
      if (gen !== pic.generation) return;
      var v = dc.rtc.video;
      if (v && v.parentNode) v.parentNode.removeChild(v);
      dc.rtc.video = null;
      if (pic.forced === 'webrtc') {
        // Forced: no MJPEG. Say why and try again.
        pic.why = why;
        dc.page.show('No picture over WebRTC', why + ' — retrying…');
        clearTimeout(retry);
        retry = setTimeout(function () { if (gen === pic.generation && pic.connected && pic.video) pic.connect(); }, 2000);
        return;
      }
      if (pic.connected) pic.fellBack = true;
      pic.generation++;
      mjpeg(why);
    }, !!(st.webrtc && st.webrtc.audio));
    // In the page from the start (behind the "Connecting" card): browsers
    // report frames only of a video that is rendered.
    if (dc.rtc.video) stage.appendChild(dc.rtc.video);
  }

  // connect opens the picture the way choice() says.
  pic.connect = function () {
    pic.generation++;
    clearTimeout(retry);
    var c = choice();
    if (c.t === 'webrtc') webrtc(); else mjpeg(c.why);
  };
  pic.disconnect = function () {
    clearTimeout(retry);
    pic.connected = false;
    dropVideo();
    img.removeAttribute('src');
  };

  // online is called with each status read: a page that was cut off opens
  // its picture again (the first status opens the first one).
  pic.online = function (st) {
    pic.status = st;
    var w = st.webrtc;
    compatBtn.hidden = !(w && w.available) && !pic.compat && pic.transport !== 'webrtc';
    if (!pic.connected) {
      pic.connected = true;
      pic.video = st.mode !== 'audio';
      if (pic.video) pic.connect();
    }
  };

  // applyMode opens or closes the picture as the share's mode asks.
  pic.applyMode = function (st) {
    var wantVideo = st.mode !== 'audio';
    if (wantVideo !== pic.video) {
      pic.video = wantVideo;
      if (pic.video) pic.connect();
      else { dropVideo(); img.removeAttribute('src'); }
    }
  };

  // watch is called with each status: it reopens a stream that is not moving.
  pic.watch = function (st) {
    if (pic.transport === 'webrtc') { missing = 0; dc.rtc.watch(st); return; }
    // A stream the server no longer knows (it dropped us) is reopened after two polls.
    if (pic.video && st.state === 'sharing' && !st.you) {
      if (++missing >= 2) { missing = 0; pic.connect(); }
    } else {
      missing = 0;
    }
    // A stream that stopped moving while the presenter's screen changes is stuck: reopen it.
    var frames = st.you ? st.you.frames : 0;
    if (pic.video && st.state === 'sharing' && st.fps > 0 && frames === lastFrames) {
      if (!stallSince) stallSince = Date.now();
      else if (Date.now() - stallSince > 5000) pic.connect();
    } else {
      stallSince = 0;
    }
    lastFrames = frames;
  };

  function setCompat(on) {
    pic.compat = on;
    compatBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    compatBtn.className = on ? 'on' : '';
    try {
      if (on) localStorage.setItem(COMPAT_KEY, '1'); else localStorage.removeItem(COMPAT_KEY);
    } catch (e) { /* no storage (private mode): this page only */ }
  }

  // init reads ?transport= and the remembered compatibility mode, and wires
  // the button. The first status opens the picture.
  pic.init = function () {
    var t = dc.page.param('transport');
    pic.forced = t === 'webrtc' || t === 'mjpeg' ? t : '';
    var saved = false;
    try { saved = localStorage.getItem(COMPAT_KEY) === '1'; } catch (e) { /* no storage */ }
    setCompat(saved);
    compatBtn.onclick = function () {
      setCompat(!pic.compat);
      pic.forced = '';
      pic.fellBack = false;
      if (pic.connected && pic.video) pic.connect();
    };
    img.onerror = function () {
      if (!pic.connected || pic.transport !== 'mjpeg') return;
      pic.disconnect();
      dc.page.show('Reconnecting…', 'The connection to the presenter dropped.');
    };
    // A page back from the back-forward cache lost its WebRTC session on pagehide.
    window.addEventListener('pageshow', function (e) {
      if (e.persisted && pic.connected && pic.video) pic.connect();
    });
  };
})(window.deskcast);
