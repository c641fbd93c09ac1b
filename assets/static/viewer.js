// Deskcast viewer, viewer.js: the page's life: it starts the other parts,
// polls /api/status once a second and hands each status to them, follows
// the presenter's answers (expired link, sent away, offline), and owns the
// fullscreen button and the keyboard shortcuts. Loaded last.
(function (dc) {
  'use strict';
  var page = dc.page, picture = dc.picture, sound = dc.sound, remote = dc.remote, stats = dc.stats, pointer = dc.pointer;
  var stage = document.getElementById('stage');
  var expired = false, failures = 0;

  function onStatus(st, rtt) {
    failures = 0;
    picture.online(st);
    sound.applyMode(st);
    picture.applyMode(st);
    remote.applyMode(st);
    pointer.applyMode(st);
    if (st.state === 'paused') {
      page.show('Paused', 'The presenter paused sharing. The picture comes back when they resume.');
    } else if (st.state === 'error') {
      page.show('Screen capture problem', st.error + ' — retrying…');
    } else if (picture.video && !picture.hasFrame(st)) {
      // A forced WebRTC that failed says why (it retries); otherwise the picture is on its way.
      if (picture.transport === 'webrtc' && picture.why) page.show('No picture over WebRTC', picture.why + ' — retrying…');
      else page.show('Connecting…', '');
    } else {
      page.hide();
    }
    picture.watch(st);
    if (stats.shown()) stats.render(st, rtt);
  }

  function poll() {
    if (expired) return;
    var xhr = new XMLHttpRequest();
    var t0 = Date.now();
    xhr.open('GET', 'api/status?v=' + picture.streamId() + page.auth, true);
    xhr.timeout = 4000;
    xhr.onload = function () {
      if (xhr.status === 401) {
        expired = true;
        picture.disconnect();
        sound.stop();
        pointer.stop();
        // Sharing restarted, so this browser is a stranger again. With the
        // link's token in hand, open it afresh: the server answers with the
        // viewer page, a PIN or waiting page, or "not valid" for an old link.
        if (page.token) location.replace('./?t=' + encodeURIComponent(page.token));
        else page.show('This link has expired', 'Sharing was restarted. Scan the new QR code or ask for the new link.');
        return;
      }
      if (xhr.status === 403) {
        // The presenter sent this viewer away (or has yet to let it in): the
        // server's page for "/" says which.
        expired = true;
        picture.disconnect();
        sound.stop();
        pointer.stop();
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
    if (picture.connected) picture.disconnect();
    pointer.stop();
    page.show('Reconnecting…', 'The presenter stopped sharing or the network dropped. This page reconnects by itself.');
    setTimeout(poll, Math.min(1000 * failures, 5000));
  }

  function toggleFullscreen() {
    var d = document, el = d.documentElement;
    if (d.fullscreenElement || d.webkitFullscreenElement) {
      (d.exitFullscreen || d.webkitExitFullscreen).call(d);
    } else if (el.requestFullscreen) {
      el.requestFullscreen();
    } else if (el.webkitRequestFullscreen) {
      el.webkitRequestFullscreen();
    } else if (picture.el().webkitEnterFullscreen) {
      picture.el().webkitEnterFullscreen(); // iPhone (a <video> only)
    }
  }

  page.init();
  sound.init();
  remote.init();
  stats.init();
  pointer.init();
  document.getElementById('btn-full').onclick = toggleFullscreen;
  stage.ondblclick = function () { if (!dc.control.granted) toggleFullscreen(); };
  document.onkeydown = function (e) {
    if (remote.key(e)) return; // a viewer in control types on the presenter's computer
    if (e.ctrlKey || e.metaKey || e.altKey) return; // leave the browser's own shortcuts alone
    var k = (e.key || '').toLowerCase();
    if (k === 's') stats.toggle();
    if (k === 'f') toggleFullscreen();
    if (k === 'm') sound.toggleMute();
  };

  page.show('Connecting…', '');
  picture.init();
  poll();
})(window.deskcast);
