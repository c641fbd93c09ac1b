package web

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// itToken is the share token of the internal tests' servers.
const itToken = "Deskcast-internal_token-0123456789"

// itPIN is the PIN of the internal tests' servers that ask for one.
const itPIN = "4821"

var itIndex = []byte("<!doctype html><title>Deskcast viewer</title>")

// itJPEG is a real 8×8 JPEG, the only frame the internal tests' source emits.
var itJPEG = func() []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		panic(err)
	}
	return buf.Bytes()
}()

// fakeClock is the sessions' clock in these tests; it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// itServer is a Server on 127.0.0.1 whose source emits itJPEG once per run.
func itServer(tb testing.TB, acc access.Access, onWaiting func(access.Viewer)) *Server {
	tb.Helper()
	srv, _ := itServerClock(tb, acc, onWaiting)
	return srv
}

// itServerClock is itServer whose sessions tell time by a fake clock, which it returns.
func itServerClock(tb testing.TB, acc access.Access, onWaiting func(access.Viewer)) (*Server, *fakeClock) {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	b := fanout.New(fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error {
		emit(&media.Frame{Codec: media.JPEG, Keyframe: true, Data: itJPEG, Width: 8, Height: 8, Captured: time.Now()})
		<-ctx.Done()
		return nil
	}), fanout.Options[*media.Frame]{Logger: log, Replay: true, Prepare: MJPEGPrepare})
	tb.Cleanup(b.Close)
	clk := &fakeClock{t: time.Now()}
	srv, err := New(Config{Listen: "127.0.0.1:0", Token: itToken, Access: acc, OnWaiting: onWaiting, Logger: log,
		Assets: fstest.MapFS{"index.html": {Data: itIndex}, "static/viewer.js": {Data: []byte("//")}},
		Video:  b, now: clk.now})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv, clk
}

// hit sends one request straight to h from remote, with the session secret
// (if any) as the cookie and form (if any) as a urlencoded body.
func hit(srv *Server, h http.Handler, method, target, remote, secret, form string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = remote
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if secret != "" {
		req.AddCookie(&http.Cookie{Name: srv.cookieName(), Value: secret})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// itLink opens the link from remote and returns the session secret it sets.
func itLink(t *testing.T, srv *Server, h http.Handler, remote string) string {
	t.Helper()
	rec := hit(srv, h, http.MethodGet, "/?t="+itToken, remote, "", "")
	for _, c := range rec.Result().Cookies() {
		if c.Name == srv.cookieName() {
			return c.Value
		}
	}
	t.Fatalf("link from %s: status %d, no cookie", remote, rec.Code)
	return ""
}

func TestPINLockClock(t *testing.T) {
	const addr = "192.0.2.1:1000"
	type step struct {
		wait   time.Duration // on the fake clock, before the try
		pin    string
		status int
	}
	wrong := func(wait time.Duration, status int) step { return step{wait, "0000", status} }
	right := func(wait time.Duration, status int) step { return step{wait, itPIN, status} }
	const (
		no     = http.StatusUnauthorized
		locked = http.StatusTooManyRequests
		in     = http.StatusSeeOther
	)
	cases := []struct {
		name  string
		steps []step
	}{
		{"the lock lifts after a minute", []step{
			wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, locked),
			right(0, locked), right(59*time.Second, locked), right(time.Second, in)}},
		{"a wrong PIN after the lock starts a new count", []step{
			wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, locked),
			wrong(61*time.Second, no), wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, locked)}},
		{"failures older than a minute are forgotten", []step{
			wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, no),
			wrong(61*time.Second, no), wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, locked)}},
		{"failures within a minute add up", []step{
			wrong(0, no), wrong(0, no), wrong(30*time.Second, no), wrong(0, no), wrong(29*time.Second, locked)}},
		{"the lock holds the right PIN back for its whole minute", []step{
			wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, no), wrong(0, locked),
			right(30*time.Second, locked), right(29*time.Second, locked), right(2*time.Second, in)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, clk := itServerClock(t, access.Access{PIN: itPIN}, nil)
			h := srv.Handler()
			secret := itLink(t, srv, h, addr)
			for i, s := range tc.steps {
				clk.add(s.wait)
				rec := hit(srv, h, http.MethodPost, "/pin", addr, secret, "pin="+s.pin)
				if rec.Code != s.status {
					t.Fatalf("step %d (after %v, PIN %s): status %d, want %d", i+1, s.wait, s.pin, rec.Code, s.status)
				}
			}
			// Whatever happened, another address was never held back.
			other := itLink(t, srv, h, "192.0.2.2:1000")
			if rec := hit(srv, h, http.MethodPost, "/pin", "192.0.2.2:1000", other, "pin="+itPIN); rec.Code != in {
				t.Errorf("right PIN from another address: status %d, want 303", rec.Code)
			}
		})
	}
}

// TestRoomAfterLeaving: a viewer who leaves frees its place once it has
// been away access.PresentFor (10 s on the fake clock), and one who comes back
// then finds the share full.
func TestRoomAfterLeaving(t *testing.T) {
	srv, clk := itServerClock(t, access.Access{MaxViewers: 2}, nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + srv.Addr().String()
	get := func(target, secret string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.AddCookie(&http.Cookie{Name: srv.cookieName(), Value: secret})
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Cookies() {
			if c.Name == srv.cookieName() {
				secret = c.Value
			}
		}
		return resp, secret
	}
	page := func(target, secret string, want int) string {
		t.Helper()
		resp, secret := get(target, secret)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: status %d (%q), want %d", target, resp.StatusCode, body, want)
		}
		return secret
	}

	a := page("/?t="+itToken, "", http.StatusOK)
	b := page("/?t="+itToken, "", http.StatusOK)
	resp, _ := get("/stream.mjpg", a)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("A's stream: status %d", resp.StatusCode)
	}
	head := make([]byte, len(partHead)+len(itJPEG))
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.HasSuffix(head, itJPEG) {
		resp.Body.Close()
		t.Fatalf("A's stream: %q, %v; want the frame", head, err)
	}
	page("/?t="+itToken, "", http.StatusServiceUnavailable)

	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.video.Stats().Subscribers != 0 || streamsOf(srv) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("A's stream still counted after it closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A just left: its place is kept for PresentFor.
	clk.add(access.PresentFor - time.Second)
	page("/api/status", b, http.StatusOK) // B's page polls; B stays
	page("/?t="+itToken, "", http.StatusServiceUnavailable)
	clk.add(2 * time.Second)
	page("/api/status", b, http.StatusOK)
	c := page("/?t="+itToken, "", http.StatusOK)
	if vs, _ := srv.Viewers(); len(vs) != 2 {
		t.Errorf("Viewers() = %+v, want B and C", vs)
	}
	// A comes back to a full share, with its page and with a stream.
	page("/", a, http.StatusServiceUnavailable)
	resp, _ = get("/stream.mjpg", a)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || bytes.Contains(body, []byte{0xFF, 0xD8}) {
		t.Fatalf("A's stream on a full share: status %d (%q), want 503 and no picture", resp.StatusCode, body)
	}
	// B leaves; A's page finds room again.
	clk.add(access.PresentFor + time.Second)
	page("/api/status", c, http.StatusOK)
	page("/", a, http.StatusOK)

	// A viewer away for ForgetAfter is forgotten once a new one arrives.
	clk.add(access.ForgetAfter + time.Second)
	page("/?t="+itToken, "", http.StatusOK)
	page("/", b, http.StatusUnauthorized)
}

// streamsOf counts the open media streams of srv's viewers. Every viewer
// with a stream open is present, so the presenter's list has them all.
func streamsOf(srv *Server) int {
	vs, _ := srv.Viewers()
	n := 0
	for _, v := range vs {
		n += v.Streams
	}
	return n
}

func TestReadCredentials(t *testing.T) {
	const name = "deskcast_8765"
	ours := func(v string) *http.Cookie { return &http.Cookie{Name: name, Value: v} }
	cases := []struct {
		name     string
		query    string
		cookies  []*http.Cookie
		want     credentials
		wantFail bool
	}{
		{"nothing", "", nil, credentials{}, false},
		{"token", "t=abc", nil, credentials{token: "abc", hasToken: true}, false},
		{"empty token", "t=", nil, credentials{hasToken: true}, false},
		{"token without =", "t", nil, credentials{hasToken: true}, false},
		{"escaped token", "t=%41b%2Dc", nil, credentials{token: "Ab-c", hasToken: true}, false},
		{"plus is a space", "t=a+b", nil, credentials{token: "a b", hasToken: true}, false},
		{"token among others", "v=1&t=abc&cl=1", nil, credentials{token: "abc", hasToken: true}, false},
		{"token key in capitals", "T=abc", nil, credentials{}, false},
		{"not UTF-8", "t=%ff%fe", nil, credentials{token: "\xff\xfe", hasToken: true}, false},
		{"repeated t=", "t=abc&t=abc", nil, credentials{}, true},
		{"repeated t=, one empty", "t=&t=abc", nil, credentials{}, true},
		{"bad escape in t=", "t=%zz", nil, credentials{}, true},
		{"bad escape elsewhere", "x=%zz&t=abc", nil, credentials{}, true},
		{"truncated escape", "t=abc%", nil, credentials{}, true},
		{"semicolon", "t=abc;x=1", nil, credentials{}, true},
		{"cookie", "", []*http.Cookie{ours("s1")}, credentials{secret: "s1"}, false},
		{"token and cookie", "t=abc", []*http.Cookie{ours("s1")}, credentials{token: "abc", hasToken: true, secret: "s1"}, false},
		{"two cookies of ours", "", []*http.Cookie{ours("s1"), ours("s2")}, credentials{}, true},
		{"the same cookie twice", "", []*http.Cookie{ours("s1"), ours("s1")}, credentials{}, true},
		{"other cookies ignored", "", []*http.Cookie{{Name: "a", Value: "1"}, ours("s1"), {Name: "deskcast_1", Value: "x"}},
			credentials{secret: "s1"}, false},
		{"another port's cookie only", "", []*http.Cookie{{Name: "deskcast_1", Value: "x"}}, credentials{}, false},
		{"our name in capitals", "", []*http.Cookie{{Name: "DESKCAST_8765", Value: "x"}}, credentials{}, false},
		{"bad query with a cookie", "t=%zz", []*http.Cookie{ours("s1")}, credentials{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readCredentials(tc.query, tc.cookies, name)
			if (err != nil) != tc.wantFail {
				t.Fatalf("readCredentials(%q, %v): err %v, want failure %v", tc.query, tc.cookies, err, tc.wantFail)
			}
			if err != nil {
				if !errors.Is(err, errBadQuery) {
					t.Errorf("err %v, want errBadQuery", err)
				}
				return
			}
			if got != tc.want {
				t.Errorf("readCredentials(%q, %v) = %+v, want %+v", tc.query, tc.cookies, got, tc.want)
			}
		})
	}
}

func TestReadPINForm(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		name, body, ctype string
		want              string // "" for an error
	}{
		{"PIN", "pin=4821", form, "4821"},
		{"12 digits", "pin=123456789012", form, "123456789012"},
		{"charset", "pin=4821", form + "; charset=UTF-8", "4821"},
		{"type in capitals", "pin=4821", "Application/X-WWW-Form-URLEncoded", "4821"},
		{"spaces around", "pin=+4821+", form, "4821"},
		{"escaped spaces around", "pin=%204821%09", form, "4821"},
		{"other fields", "a=1&pin=4821&b=2", form, "4821"},
		{"escaped digits", "pin=%34%38%32%31", form, "4821"},
		{"no content type", "pin=4821", "", ""},
		{"text", "pin=4821", "text/plain", ""},
		{"multipart", "pin=4821", "multipart/form-data; boundary=x", ""},
		{"JSON", `{"pin":"4821"}`, "application/json", ""},
		{"broken content type", "pin=4821", form + "; =", ""},
		{"repeated", "pin=4821&pin=4821", form, ""},
		{"repeated, one empty", "pin=&pin=4821", form, ""},
		{"empty", "pin=", form, ""},
		{"no pin", "pim=4821", form, ""},
		{"capital PIN", "PIN=4821", form, ""},
		{"empty body", "", form, ""},
		{"letters", "pin=48a1", form, ""},
		{"three digits", "pin=482", form, ""},
		{"13 digits", "pin=1234567890123", form, ""},
		{"inner space", "pin=48+21", form, ""},
		{"full-width digits", "pin=%EF%BC%94%EF%BC%98%EF%BC%92%EF%BC%91", form, ""},
		{"bad escape", "pin=%zz", form, ""},
		{"semicolon", "pin=4821;x=1", form, ""},
		{"NUL", "pin=4821%00", form, ""},
		{"over 1 KiB", "pin=4821&x=" + strings.Repeat("a", 1100), form, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// As handlePIN reads it: at most 1 KiB.
			body := http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(tc.body)), 1<<10)
			got, err := readPINForm(body, tc.ctype)
			if tc.want == "" {
				if err == nil {
					t.Errorf("readPINForm(%.60q, %q) = %q, want an error", tc.body, tc.ctype, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("readPINForm(%.60q, %q) = %q, %v; want %q", tc.body, tc.ctype, got, err, tc.want)
			}
		})
	}
}
