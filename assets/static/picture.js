// Deskcast viewer, picture.js: the shared screen, an MJPEG stream (stream.mjpg)
// shown by the page's <img>, reopened when it drops, stalls or is forgotten by
// the server.
(function (dc) {
  'use strict';
  var img = document.getElementById('screen');
  var lastFrames = -1, stallSince = 0, missing = 0;

  // video: the share includes the screen (not audio only); connected: the
  // page reaches the presenter; generation: how many streams it has opened.
  var pic = dc.picture = { img: img, video: true, connected: false, generation: 0 };

  // Each stream gets an id of its own, so the status of an old one never answers for the new.
  pic.streamId = function () { return dc.page.id + 'g' + pic.generation; };

  pic.connect = function () {
    pic.generation++;
    lastFrames = -1;
    stallSince = 0;
    img.src = 'stream.mjpg?v=' + pic.streamId() + dc.page.auth;
  };
  pic.disconnect = function () {
    img.removeAttribute('src');
    pic.connected = false;
  };

  // online is called with each status read: a page that was cut off opens its stream again.
  pic.online = function () {
    if (!pic.connected) {
      pic.connected = true;
      if (pic.video) pic.connect();
    }
  };

  // applyMode opens or closes the stream as the share's mode asks.
  pic.applyMode = function (st) {
    var wantVideo = st.mode !== 'audio';
    if (wantVideo !== pic.video) {
      pic.video = wantVideo;
      if (pic.video) pic.connect(); else img.removeAttribute('src');
    }
  };

  // watch is called with each status: it reopens a stream that is not moving.
  pic.watch = function (st) {
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

  // init opens the first stream.
  pic.init = function () {
    img.onerror = function () {
      if (!pic.connected) return;
      pic.disconnect();
      dc.page.show('Reconnecting…', 'The connection to the presenter dropped.');
    };
    pic.connected = true;
    pic.connect();
  };
})(window.deskcast);
