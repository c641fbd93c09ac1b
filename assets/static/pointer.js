// Deskcast viewer, pointer.js: the presenter's mouse pointer, drawn over the
// picture from its own small stream (/ws/pointer): its shape once per change
// (a text message with the size and hotspot, then the PNG), then its
// position as fractions of the picture. Moving the pointer never costs a
// new picture. With "highlight", a soft ring marks it for presentations.
(function (dc) {
  'use strict';
  var stage = document.getElementById('stage');
  var box = document.createElement('div');
  var ring = document.createElement('div');
  var img = document.createElement('img');
  box.id = 'pointer';
  box.className = 'pointer';
  box.hidden = true;
  ring.className = 'pointer-ring';
  img.alt = '';
  box.appendChild(ring);
  box.appendChild(img);

  // window.deskcast.pointer is the pointer's state: the socket, the mode
  // (on, off, highlight), the shape, the newest position, and, for the tests
  // and the benchmark, how many positions and bytes came, and when (log:
  // [time, x, y, visible]).
  var ptr = dc.pointer = { ws: null, mode: 'off', shape: null, pos: null, updates: 0, bytes: 0, log: [], shown: false };
  var pending = null; // a shape message whose PNG is on its way
  var url = '';       // the shape's blob: URL
  var queued = false;

  // applyMode is called with each status: it opens the pointer socket while
  // the presenter shows the pointer and the screen is shared, and closes it otherwise.
  ptr.applyMode = function (st) {
    ptr.mode = st.pointer || 'off';
    var on = ptr.mode !== 'off' && st.mode !== 'audio' && st.state !== 'paused';
    box.className = ptr.mode === 'highlight' ? 'pointer highlight' : 'pointer';
    if (on && !ptr.ws) connect();
    if (!on && ptr.ws) { var ws = ptr.ws; ptr.ws = null; ws.close(); }
    draw();
  };
  ptr.stop = function () {
    if (ptr.ws) { var ws = ptr.ws; ptr.ws = null; ws.close(); }
    draw();
  };

  function connect() {
    var ws = new WebSocket(dc.page.wsURL('/ws/pointer'));
    ws.binaryType = 'blob';
    ptr.ws = ws;
    ws.onmessage = function (e) {
      if (ptr.ws !== ws) return;
      ptr.bytes += typeof e.data === 'string' ? e.data.length : e.data.size;
      if (typeof e.data !== 'string') {
        if (!pending) return;
        if (url) URL.revokeObjectURL(url);
        url = URL.createObjectURL(e.data);
        img.src = url;
        ptr.shape = pending;
        pending = null;
        draw();
        return;
      }
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.type === 'shape') pending = m;
      else if (m.type === 'pos') {
        ptr.pos = m;
        ptr.updates++;
        ptr.log.push([Date.now(), m.x, m.y, m.visible]);
        if (ptr.log.length > 2000) ptr.log.splice(0, 1000);
        schedule();
      }
    };
    ws.onclose = function () {
      if (ptr.ws !== ws) return;
      ptr.ws = null;
      draw();
    };
  }

  // schedule draws at the next frame: at most one layout a frame, the newest position wins.
  function schedule() {
    if (queued) return;
    queued = true;
    (window.requestAnimationFrame || setTimeout)(function () { queued = false; draw(); });
  }

  // contentBox is where the picture's pixels are on the page: the <img> and
  // the <video> are fitted with object-fit: contain, so letterboxing,
  // fullscreen and zoom all come down to this.
  function contentBox() {
    var pic = dc.picture, el = pic.el(), size = pic.size(), st = pic.status || {};
    var nw = size.w || st.width, nh = size.h || st.height;
    var r = el.getBoundingClientRect();
    if (!nw || !nh || !r.width || !r.height) return null;
    var s = Math.min(r.width / nw, r.height / nh), w = nw * s, h = nh * s;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, w: w, h: h };
  }

  function draw() {
    var p = ptr.pos, sh = ptr.shape, pic = dc.picture;
    var b = ptr.ws && p && p.visible && sh && pic.video && pic.connected ? contentBox() : null;
    if (!b) {
      if (ptr.shown) { box.hidden = true; ptr.shown = false; }
      return;
    }
    // k: page pixels per screen pixel, so the pointer keeps its size relative to the picture.
    var k = b.w / (sh.aw || b.w);
    var x = b.left + p.x * b.w, y = b.top + p.y * b.h;
    img.style.width = (sh.w * k) + 'px';
    img.style.height = (sh.h * k) + 'px';
    img.style.left = (-(sh.hx + 0.5) * k) + 'px';
    img.style.top = (-(sh.hy + 0.5) * k) + 'px';
    box.style.left = x + 'px';
    box.style.top = y + 'px';
    if (!ptr.shown) { box.hidden = false; ptr.shown = true; }
  }

  ptr.init = function () {
    stage.appendChild(box);
    window.addEventListener('resize', draw);
    document.addEventListener('fullscreenchange', draw);
    document.addEventListener('webkitfullscreenchange', draw);
  };
})(window.deskcast);
