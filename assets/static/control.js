// Deskcast viewer, control.js: remote control over /ws/control, only once the
// presenter grants it to this viewer: mouse and pen, touch, keyboard, and the
// banner that says so.
//
// Positions go as fractions of the picture (0..1), so the page's size,
// zoom, letterboxing and the stream's downscale do not matter.
(function (dc) {
  'use strict';
  var stage = document.getElementById('stage');
  var banner = document.getElementById('control-banner');
  var kbdBtn = document.getElementById('btn-kbd');
  var kbd = document.getElementById('kbd');
  var NAMED = ['Enter', 'Backspace', 'Tab', 'Escape', 'ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown',
    'Delete', 'Home', 'End', 'PageUp', 'PageDown', 'Shift', 'Control', 'Alt', 'Meta', ' '];

  // window.deskcast.control is the control state: the socket, whether this
  // viewer holds control, messages sent, the picture's size and the keys held
  // down. The end-to-end tests read it.
  var ctl = dc.control = { ws: null, granted: false, sent: 0, w: 0, h: 0, held: {} };
  var remote = dc.remote = {};

  // applyMode is called with each status: it opens the control socket while
  // the presenter offers control, and closes it when they stop.
  remote.applyMode = function (st) {
    var c = st.control || {};
    ctl.w = st.width; ctl.h = st.height;
    var on = !!c.mode && !c.unavailable && st.mode !== 'audio';
    if (on && !ctl.ws) controlConnect();
    if (!on && ctl.ws) { var ws = ctl.ws; ctl.ws = null; ws.close(); setGranted(false); }
  };
  function controlConnect() {
    var ws = new WebSocket(dc.page.wsURL('/ws/control'));
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
  // frac maps a point of the page to fractions of the shown picture (the
  // MJPEG <img> or the WebRTC <video>, both fitted with object-fit: contain):
  // null outside it, or (clamp) the nearest edge, so a drag that ends outside still lets go.
  function frac(cx, cy, clamp) {
    var el = dc.picture.el(), size = dc.picture.size();
    var r = el.getBoundingClientRect();
    var nw = size.w || ctl.w, nh = size.h || ctl.h;
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
  var pendingMove = null;
  function isTouch(e) { return e.pointerType === 'touch'; }
  function onPointerDown(e) {
    if (!ctl.granted) return;
    e.preventDefault();
    if (isTouch(e)) return touchDown(e);
    pendingMove = null;
    if (pointer('down', e.clientX, e.clientY, { b: e.button })) {
      mouseDown[e.button] = true;
      if (stage.setPointerCapture) stage.setPointerCapture(e.pointerId);
    }
  }
  function onPointerMove(e) {
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
  }
  function onPointerUp(e) {
    if (!ctl.granted) return;
    e.preventDefault();
    if (isTouch(e)) return touchUp(e);
    if (!mouseDown[e.button]) return;
    delete mouseDown[e.button];
    pendingMove = null;
    pointer('up', e.clientX, e.clientY, { b: e.button });
  }
  var wheelAcc = { x: 0, y: 0 };
  function onWheel(e) {
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
  }

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

  // key takes a keydown while this viewer holds control and reports whether
  // it did; without control the page's own shortcuts have the key.
  remote.key = function (e) {
    if (!ctl.granted) return false;
    if (e.target === kbd && e.key && e.key.length === 1) return true; // the field's input event sends it
    keyDown(e);
    return true;
  };

  // init listens to the picture's pointer, wheel and touch events and to the keyboard.
  remote.init = function () {
    stage.addEventListener('pointerdown', onPointerDown);
    stage.addEventListener('pointermove', onPointerMove);
    stage.addEventListener('pointerup', onPointerUp);
    stage.addEventListener('pointercancel', function (e) { if (isTouch(e)) touchUp(e); });
    stage.addEventListener('contextmenu', function (e) { if (ctl.granted) e.preventDefault(); });
    stage.addEventListener('wheel', onWheel, { passive: false });
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
  };
})(window.deskcast);
