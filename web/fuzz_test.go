package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
)

// FuzzReadCredentials: no query or Cookie header crashes the parser, and what
// it accepts is unambiguous: the one t= value, the one cookie of ours.
func FuzzReadCredentials(f *testing.F) {
	const name = "deskcast_8765"
	for _, s := range [][2]string{
		{"", ""},
		{"t=" + itToken, ""},
		{"t=" + itToken + "&v=abc123&cl=1", "deskcast_8765=0123456789abcdef0123456789abcdef"},
		{"", "deskcast_8765=0123456789abcdef0123456789abcdef"},
		{"t=a&t=b", ""},
		{"t=%zz", "deskcast_8765=x"},
		{"t=%ff%fe", ""},
		{"t=a;b", ""},
		{"t", "a=1; deskcast_8765=s; b=2"},
		{"", "deskcast_8765=a; deskcast_8765=b"},
		{"", "deskcast_8765=; deskcast_8765=b"},
		{"", `deskcast_8765="quoted"`},
		{"", "deskcast_1=x; DESKCAST_8765=y"},
		{"T=x&t=y", "deskcast_8765=\x00"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rawQuery, cookieHeader string) {
		cookies := (&http.Request{Header: http.Header{"Cookie": {cookieHeader}}}).Cookies()
		c, err := readCredentials(rawQuery, cookies, name)
		if err != nil {
			return
		}
		q, qerr := url.ParseQuery(rawQuery)
		if qerr != nil {
			t.Fatalf("accepted %q, which url.ParseQuery refuses (%v)", rawQuery, qerr)
		}
		ts, has := q["t"]
		if c.hasToken != has {
			t.Fatalf("hasToken %v for %q", c.hasToken, rawQuery)
		}
		if has && (len(ts) != 1 || c.token != ts[0]) {
			t.Fatalf("token %q for t= values %q", c.token, ts)
		}
		if !has && c.token != "" {
			t.Fatalf("token %q without t=", c.token)
		}
		var ours []string
		for _, k := range cookies {
			if k.Name == name && k.Value != "" {
				ours = append(ours, k.Value)
			}
		}
		switch {
		case len(ours) > 1:
			t.Fatalf("accepted two cookies of ours %q, secret %q", ours, c.secret)
		case len(ours) == 1 && c.secret != ours[0]:
			t.Fatalf("secret %q, cookie %q", c.secret, ours[0])
		case len(ours) == 0 && c.secret != "":
			t.Fatalf("secret %q without a cookie of ours", c.secret)
		}
	})
}

// FuzzReadPINForm: no body or Content-Type crashes the form reader, and it
// only ever returns a valid PIN that the body held once.
func FuzzReadPINForm(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	for _, s := range [][2]string{
		{"pin=4821", form},
		{"pin=+4821+", form + "; charset=utf-8"},
		{"pin=4821&pin=4821", form},
		{"pin=48a1", form},
		{"pin=%zz", form},
		{"pin=4821", "text/plain"},
		{"pin=4821", ""},
		{"pin=4821", form + "; ="},
		{`{"pin":"4821"}`, "application/json"},
		{"pin=" + strings.Repeat("1", 2000), form},
		{"", form},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(body)), 1<<10)
		pin, err := readPINForm(r, contentType)
		if err != nil {
			if pin != "" {
				t.Fatalf("error %v with PIN %q", err, pin)
			}
			return
		}
		if access.ValidPIN(pin) != nil {
			t.Fatalf("accepted PIN %q", pin)
		}
		if len(body) > 1<<10 {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		q, qerr := url.ParseQuery(body)
		if qerr != nil || len(q["pin"]) != 1 || strings.TrimSpace(q["pin"][0]) != pin {
			t.Fatalf("PIN %q from body %q (%v)", pin, body, q)
		}
	})
}

var viewerIDShape = regexp.MustCompile(`^[A-Za-z0-9]{0,32}$`)

// FuzzViewerID: a stream's ?v= id is only ever short and alphanumeric (it is
// logged and matched against other viewers).
func FuzzViewerID(f *testing.F) {
	for _, s := range []string{"", "v=abc123", "v=" + strings.Repeat("a", 32), "v=" + strings.Repeat("a", 33), "v=a-b",
		"v=%ff", "v=a&v=b", "v=%zz", "v=%41%42", "v=\x00", "t=x&v=AbC09"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		id := viewerID(&http.Request{URL: &url.URL{Path: "/stream.mjpg", RawQuery: rawQuery}})
		if !viewerIDShape.MatchString(id) {
			t.Fatalf("viewerID(%q) = %q", rawQuery, id)
		}
		if id != "" && (&url.URL{RawQuery: rawQuery}).Query().Get("v") != id {
			t.Fatalf("viewerID(%q) = %q, not the query's v", rawQuery, id)
		}
	})
}

// FuzzHandler sends any method, path, query and Cookie header through the
// real handler of a server with a PIN and approval, in which one viewer is
// in (its cookie is among the seeds). Nothing panics, and a request with
// neither the token nor a live session's cookie gets no 2xx but for the
// public files, and never a byte of picture.
func FuzzHandler(f *testing.F) {
	srv := itServer(f, access.Access{PIN: itPIN, Approve: access.ApproveAsk, ApproveTimeout: time.Hour, MaxViewers: -1}, nil)
	h := srv.Handler()
	name := srv.cookieName()

	// One viewer who is in: link, PIN, presenter's yes.
	const remote = "127.0.0.1:40000" // loopback: the presenter's routes are in play too
	rec := hit(srv, h, http.MethodGet, "/?t="+itToken, remote, "", "")
	var secret string
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			secret = c.Value
		}
	}
	if rec := hit(srv, h, http.MethodPost, "/pin", remote, secret, "pin="+itPIN); secret == "" || rec.Code != http.StatusSeeOther {
		f.Fatalf("setting up a viewer: status %d", rec.Code)
	}
	vs, _ := srv.Viewers()
	if len(vs) != 1 {
		f.Fatalf("Viewers() = %+v, want the one", vs)
	}
	if err := srv.Allow(vs[0].ID); err != nil {
		f.Fatal(err)
	}
	in := name + "=" + secret

	for _, s := range [][4]string{
		{"GET", "/", "t=" + itToken, ""},
		{"GET", "/", "", in},
		{"GET", "/stream.mjpg", "", ""},
		{"GET", "/stream.mjpg", "t=" + itToken, ""},
		{"GET", "/stream.mjpg", "t=" + itToken + "x", in},
		{"GET", "/stream.mjpg", "t=" + itToken + "&t=" + itToken, ""},
		{"HEAD", "/stream.mjpg", "", in},
		{"GET", "/snapshot.jpg", "", name + "=" + strings.Repeat("0", 32)},
		{"GET", "/snapshot.jpg", "t=%ff", in},
		{"GET", "/api/status", "v=abc", in},
		{"GET", "/audio.wav", "t=" + itToken, ""},
		{"GET", "/ws/audio", "", in},
		{"POST", "/pin", "", in},
		{"GET", "/api/viewers", "t=" + itToken, ""},
		{"GET", "/api/viewers", "", in},
		{"POST", "/api/viewers/" + vs[0].ID + "/allow", "", ""},
		{"POST", "/api/viewers/00000000/kick", "t=" + itToken, ""},
		{"GET", "/static/viewer.js", "", ""},
		{"GET", "/static/../index.html", "", ""},
		{"GET", "/favicon.ico", "", ""},
		{"PUT", "/stream.mjpg", "t=" + itToken, in},
		{"GET", "//stream.mjpg", "", ""},
		{"GET", "", "", ""},
		{"GET", "stream.mjpg", "", ""},
		{"GET", "0", "\xff\xd8", "0"}, // a redirect echoing the query's own bytes is no picture
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}

	f.Fuzz(func(t *testing.T, method, path, rawQuery, cookie string) {
		r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Proto: "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: http.NoBody, Host: "127.0.0.1", RemoteAddr: remote,
			RequestURI: (&url.URL{Path: path, RawQuery: rawQuery}).RequestURI()}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		c, err := readCredentials(rawQuery, r.Cookies(), name)
		credentialed := err == nil && (c.hasToken && c.token == itToken || !c.hasToken && srv.viewers.Lookup(c.secret) != nil)
		// A stream runs until its request ends: for a request that may
		// watch, end it at once; for one that may not, a leaked stream ends
		// (and fails below) within a second instead of hanging the fuzzer.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if credentialed {
			cancel()
		}
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(ctx))
		if credentialed {
			return
		}
		public := strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/favicon.ico"
		if rec.Code >= 200 && rec.Code < 300 && !public {
			t.Fatalf("%s %q ?%q Cookie %q: status %d without credentials", method, path, rawQuery, cookie, rec.Code)
		}
		// JPEG bytes: the frame's header, or FF D8 that the request did not
		// bring itself (a redirect echoes the raw query).
		body := rec.Body.Bytes()
		if bytes.Contains(body, itJPEG[:16]) ||
			bytes.Contains(body, []byte{0xFF, 0xD8}) && !strings.Contains(method+path+rawQuery+cookie, "\xff\xd8") {
			t.Fatalf("%s %q ?%q Cookie %q: picture bytes without credentials: %q", method, path, rawQuery, cookie, body)
		}
		if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "multipart/") {
			t.Fatalf("%s %q ?%q Cookie %q: Content-Type %q without credentials", method, path, rawQuery, cookie, ct)
		}
	})
}
