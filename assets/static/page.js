// Deskcast viewer, page.js: what the parts of the viewer page share: the
// link's token, the page's id and the message card.
//
// Plain ES5 on purpose: TV and old phone browsers must run it. No modules and
// no build step: index.html loads page.js, picture.js, webrtc.js, sound.js,
// control.js, stats.js and viewer.js in that order. Each file adds its part to
// window.deskcast and does nothing on its own; viewer.js starts them all.
(function () {
  'use strict';
  var card = document.getElementById('card');
  var cardTitle = document.getElementById('card-title');
  var cardText = document.getElementById('card-text');

  // page.token is the link's token, page.auth what each request adds for it
  // (nothing when the cookie carries it), page.id this page's random id.
  var page = { token: '', auth: '', id: '' };
  window.deskcast = { page: page };

  function randomId() {
    var s = '', c = 'abcdefghijklmnopqrstuvwxyz0123456789';
    for (var i = 0; i < 12; i++) s += c.charAt(Math.floor(Math.random() * c.length));
    return s;
  }

  // param returns the query parameter name of the page's address as it was
  // opened (init takes the token out of the address bar), or ''.
  var search = location.search;
  page.param = function (name) {
    var m = new RegExp('[?&]' + name + '=([^&]*)').exec(search);
    return m ? decodeURIComponent(m[1]) : '';
  };

  // init reads the token and picks the page's id.
  page.init = function () {
    // The server set a cookie from ?t=; drop the token from the address bar and history.
    page.token = page.param('t');
    // The other parameters (transport=, stats=) stay, so a reload keeps them.
    var rest = search.replace(/^\?/, '').split('&').filter(function (kv) { return kv && kv.indexOf('t=') !== 0; }).join('&');
    if (page.token && window.history && history.replaceState) history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
    page.auth = (page.token && navigator.cookieEnabled === false) ? '&t=' + encodeURIComponent(page.token) : '';
    page.id = randomId();
  };

  // wsURL returns the WebSocket address of path for this page.
  page.wsURL = function (path) {
    var proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    return proto + location.host + path + '?v=' + page.id + page.auth;
  };

  // show puts a message card over the picture; hide takes it away.
  page.show = function (title, text) {
    cardTitle.textContent = title;
    cardText.textContent = text || '';
    card.hidden = false;
  };
  page.hide = function () { card.hidden = true; };
})();
