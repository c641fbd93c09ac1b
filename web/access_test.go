package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

// pin is the PIN of the test servers that ask for one.
const pin = "4821"

// wrongToken is the test token with its last character changed.
const wrongToken = "Deskcast-test_token-0123456789ac"

const formType = "application/x-www-form-urlencoded"

// User-Agents as real browsers send them.
const (
	uaChromeAndroid  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaFirefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
)

// answer is one response a browser got, kept to look for the PIN in.
type answer struct {
	what   string
	header http.Header
	body   []byte
}

// browser is one viewer's browser: its own cookie jar and User-Agent. It
// does not follow redirects, so the tests see them.
type browser struct {
	ts   *testServer
	ua   string
	c    *http.Client
	seen []answer
}

func newBrowser(t *testing.T, ts *testServer, ua string) *browser {
	t.Helper()
	return &browser{ts: ts, ua: ua, c: testenv.Client(t)}
}

// open sends a request and returns the response unread; the caller closes its body.
func (b *browser) open(t *testing.T, method, target, ctype string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(timeout(t), method, b.ts.base+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if b.ua != "" {
		req.Header.Set("User-Agent", b.ua)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

// fetch sends a request and reads at most 64 KiB of the answer, so a stream
// served by mistake cannot hang the test.
func (b *browser) fetch(t *testing.T, method, target, ctype string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	resp := b.open(t, method, target, ctype, body)
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	b.seen = append(b.seen, answer{method + " " + target, resp.Header, data})
	return resp, data
}

func (b *browser) get(t *testing.T, target string) (*http.Response, []byte) {
	t.Helper()
	return b.fetch(t, http.MethodGet, target, "", nil)
}

func (b *browser) postPIN(t *testing.T, form string) (*http.Response, []byte) {
	t.Helper()
	return b.fetch(t, http.MethodPost, "/pin", formType, strings.NewReader(form))
}

// cookie returns the session cookie in b's jar, or nil.
func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.ts.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == b.ts.cookieName() {
			return c
		}
	}
	return nil
}

// watch opens /stream.mjpg and reads its first part, which must be want.
// The stream stays open until the test ends or the caller closes it.
func (b *browser) watch(t *testing.T, want *media.Frame) *http.Response {
	t.Helper()
	resp := b.open(t, http.MethodGet, "/stream.mjpg", "", nil)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("/stream.mjpg: status %d (%q), want 200", resp.StatusCode, body)
	}
	_, got := readPart(t, multipart.NewReader(resp.Body, mediaBoundary(t, resp)))
	if !bytes.Equal(got, want.Data) {
		t.Fatalf("/stream.mjpg: first part is not the source's frame")
	}
	return resp
}

// noMedia checks that an answer carries no picture and no sound.
func noMedia(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if bytes.Contains(body, []byte{0xFF, 0xD8}) {
		t.Errorf("answer carries JPEG bytes (FF D8): %.200q", body)
	}
	if bytes.Contains(body, []byte("RIFF")) {
		t.Errorf("answer carries a WAV header: %.200q", body)
	}
	ct := resp.Header.Get("Content-Type")
	for _, p := range []string{"image/", "multipart/", "audio/"} {
		if strings.HasPrefix(ct, p) {
			t.Errorf("answer has Content-Type %q", ct)
		}
	}
}

// refused checks an answer has status code and no media.
func refused(t *testing.T, what string, resp *http.Response, body []byte, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("%s: status %d (%.200q), want %d", what, resp.StatusCode, body, code)
	}
	noMedia(t, resp, body)
}

// isPage checks an answer is one of the server's HTML pages, with status
// code and title, and no media.
func isPage(t *testing.T, what string, resp *http.Response, body []byte, code int, title string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("%s: status %d, want %d; body %.300q", what, resp.StatusCode, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want text/html", what, ct)
	}
	if want := "<title>Deskcast: " + title + "</title>"; !bytes.Contains(body, []byte(want)) {
		t.Errorf("%s: page %.300q, want %s", what, body, want)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("%s: page without a Content-Security-Policy", what)
	}
	noMedia(t, resp, body)
}

// hasRefresh reports whether body is a page that reloads itself.
func hasRefresh(body []byte) bool { return bytes.Contains(body, []byte(`<meta http-equiv="refresh"`)) }

// pinRe finds the PIN standing alone: not inside a longer run of hex digits,
// as in a random cookie secret or viewer id.
var pinRe = regexp.MustCompile(`(^|[^0-9A-Fa-f])` + pin + `([^0-9A-Fa-f]|$)`)

// noPIN checks that the PIN appears in no header and no body a browser got.
// JSON bodies are searched in their strings only: a counter such as
// bytes_sent may be 4821 by chance.
func noPIN(t *testing.T, seen []answer) {
	t.Helper()
	for _, a := range seen {
		for k, vs := range a.header {
			if k == "Date" {
				continue
			}
			for _, v := range vs {
				if pinRe.MatchString(v) {
					t.Errorf("%s: header %s: %q shows the PIN", a.what, k, v)
				}
			}
		}
		if strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			var v any
			if err := json.Unmarshal(a.body, &v); err != nil {
				t.Errorf("%s: JSON %q: %v", a.what, a.body, err)
			}
			for _, s := range jsonStrings(v) {
				if pinRe.MatchString(s) {
					t.Errorf("%s: JSON string %q shows the PIN", a.what, s)
				}
			}
			continue
		}
		if pinRe.Match(a.body) {
			t.Errorf("%s: body shows the PIN: %.300q", a.what, a.body)
		}
	}
}

// jsonStrings returns every key and string value in v.
func jsonStrings(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
	case map[string]any:
		for k, e := range v {
			out = append(out, k)
			out = append(out, jsonStrings(e)...)
		}
	}
	return out
}

// mediaPaths are the guarded routes that serve a picture, sound or the status.
var mediaPaths = []string{"/stream.mjpg", "/snapshot.jpg", "/api/status", "/audio.wav", "/ws/audio"}

// pinServer is a test server asking for pin, sharing a picture and sound.
func pinServer(t *testing.T, acc access.Access, onWaiting func(access.Viewer)) (*testServer, *media.Frame, *fanout.Hub[*media.AudioChunk]) {
	t.Helper()
	fd := newFeed()
	f := jpegFrame(t, 16, 16, 128)
	fd.First = repeat(f)
	hub := newAudioHub(t, newAudioFeed(1000))
	ts := startServer(t, web.Config{Access: acc, Audio: hub, OnWaiting: onWaiting}, fd)
	ts.srv.SetMeta(web.Meta{AudioDevice: "fake", AudioName: "Fake"})
	return ts, f, hub
}

// nothingCaptured checks that neither the screen nor the sound was opened.
func nothingCaptured(t *testing.T, ts *testServer, hub *fanout.Hub[*media.AudioChunk]) {
	t.Helper()
	if n := ts.fd.Runs(); n != 0 {
		t.Errorf("the screen source ran %d times for viewers who may not watch", n)
	}
	if st := hub.Stats(); st.Running || st.Subscribers != 0 {
		t.Errorf("the sound hub runs (%+v) for viewers who may not watch", st)
	}
}

func TestPIN(t *testing.T) {
	acc := access.Access{PIN: pin}

	t.Run("the link gives the PIN page and nothing else", func(t *testing.T) {
		ts, _, hub := pinServer(t, acc, nil)
		b := newBrowser(t, ts, uaChromeAndroid)
		resp, body := b.get(t, "/?t="+token)
		isPage(t, "link", resp, body, http.StatusUnauthorized, "Enter the PIN")
		for _, want := range []string{`<form method="post" action="/pin">`, `<input name="pin"`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("PIN page %q lacks %s", body, want)
			}
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("PIN page Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
		}
		if b.cookie() == nil {
			t.Fatalf("the PIN page set no session cookie (Set-Cookie %q)", resp.Header.Values("Set-Cookie"))
		}
		for _, p := range append(mediaPaths, "/", "/?t="+token) {
			resp, body := b.get(t, p)
			refused(t, p+" with the cookie, before the PIN", resp, body, http.StatusUnauthorized)
		}
		// The token alone, without the cookie, does no better; only the
		// presenter's own /api/status (this computer, TestPresenterStatusWithAccess) is answered.
		for _, p := range mediaPaths {
			if p == "/api/status" {
				continue
			}
			resp, body := newBrowser(t, ts, "").get(t, p+"?t="+token)
			refused(t, p+"?t=token, before the PIN", resp, body, http.StatusUnauthorized)
		}
		hc := newHandlerClient(ts)
		if rec := hc.do(t, http.MethodGet, "/api/status?t="+token, "192.0.2.50:1000", "", ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("/api/status?t=token from another computer, before the PIN: status %d, want 401", rec.Code)
		}
		nothingCaptured(t, ts, hub)
		noPIN(t, b.seen)
	})

	t.Run("a wrong PIN is refused with a message", func(t *testing.T) {
		ts, _, hub := pinServer(t, acc, nil)
		b := newBrowser(t, ts, "")
		b.get(t, "/?t="+token)
		for _, wrong := range []string{"0000", "4822", "48210", "1234567890"} {
			resp, body := b.postPIN(t, "pin="+wrong)
			isPage(t, "PIN "+wrong, resp, body, http.StatusUnauthorized, "Enter the PIN")
			if !bytes.Contains(body, []byte(`role="alert"`)) || !bytes.Contains(body, []byte("wrong PIN")) {
				t.Errorf("PIN %s: page %q does not say the PIN was wrong", wrong, body)
			}
			resp, body = b.get(t, "/api/status")
			refused(t, "/api/status after PIN "+wrong, resp, body, http.StatusUnauthorized)
		}
		nothingCaptured(t, ts, hub)
		noPIN(t, b.seen)
	})

	t.Run("malformed forms", func(t *testing.T) {
		cases := []struct{ name, ctype, body string }{
			{"wrong content type", "text/plain", "pin=" + pin},
			{"no content type", "", "pin=" + pin},
			{"JSON", "application/json", `{"pin":"` + pin + `"}`},
			{"multipart", "multipart/form-data; boundary=x",
				"--x\r\nContent-Disposition: form-data; name=\"pin\"\r\n\r\n" + pin + "\r\n--x--\r\n"},
			{"repeated pin", formType, "pin=" + pin + "&pin=" + pin},
			{"non-digits", formType, "pin=48a1"},
			{"full-width digits", formType, "pin=" + url.QueryEscape("４８２１")},
			{"bad escape", formType, "pin=%zz" + pin},
			{"semicolon", formType, "pin=" + pin + ";x=1"},
			{"2 KB body", formType, "pin=" + pin + "&pad=" + strings.Repeat("a", 2048)},
			{"empty body", formType, ""},
			{"no pin field", formType, "PIN=" + pin},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ts, f, _ := pinServer(t, acc, nil)
				b := newBrowser(t, ts, "")
				b.get(t, "/?t="+token)
				resp, body := b.fetch(t, http.MethodPost, "/pin", tc.ctype, strings.NewReader(tc.body))
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d (Location %q), want 401", resp.StatusCode, resp.Header.Get("Location"))
				}
				if !bytes.Contains(body, []byte(`role="alert"`)) {
					t.Errorf("page %q says nothing of what went wrong", body)
				}
				noMedia(t, resp, body)
				resp, body = b.get(t, "/api/status")
				refused(t, "/api/status after the malformed form", resp, body, http.StatusUnauthorized)
				// The server is none the worse: the real form still works.
				if resp, _ := b.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("the right PIN after the malformed form: status %d, want 303", resp.StatusCode)
				}
				b.watch(t, f)
				noPIN(t, b.seen)
			})
		}
	})

	t.Run("the right PIN lets in", func(t *testing.T) {
		ts, f, _ := pinServer(t, acc, nil)
		b := newBrowser(t, ts, "")
		b.get(t, "/?t="+token)
		resp, body := b.postPIN(t, "pin="+pin)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("right PIN: status %d, Location %q; want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		noMedia(t, resp, body)
		resp, body = b.get(t, "/")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, indexHTML) {
			t.Fatalf("/ after the PIN: status %d %q, want 200 and the viewer page", resp.StatusCode, body)
		}
		resp, _ = b.get(t, "/api/status")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/api/status after the PIN: status %d", resp.StatusCode)
		}
		b.watch(t, f)
		// The PIN page again, once in, lets straight through.
		if resp, _ := b.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("PIN form again once in: status %d, want 303", resp.StatusCode)
		}
		noPIN(t, b.seen)
	})

	t.Run("the PIN is in no answer", func(t *testing.T) {
		ts, f, _ := pinServer(t, acc, nil)
		b := newBrowser(t, ts, uaSafariIPhone)
		b.get(t, "/?t="+token)
		b.postPIN(t, "pin=0000")
		b.postPIN(t, "pin=x")
		b.postPIN(t, "pin="+pin)
		b.get(t, "/")
		b.watch(t, f)
		b.get(t, "/api/status")                    // as a viewer, with the viewer list (loopback)
		b.get(t, "/api/status?t="+token)           // as the presenter
		b.get(t, "/api/viewers?t="+token)          // the presenter's list
		newBrowser(t, ts, "").get(t, "/?t="+token) // another viewer's PIN page
		if len(b.seen) < 8 {
			t.Fatalf("only %d answers seen", len(b.seen))
		}
		noPIN(t, b.seen)
		if st := ts.srv.Status(); st.Viewers != 1 {
			t.Errorf("Status().Viewers = %d, want the one stream", st.Viewers)
		}
	})
}

func TestPINLockout(t *testing.T) {
	ts, _, hub := pinServer(t, access.Access{PIN: pin}, nil)
	a := newBrowser(t, ts, "")
	a.get(t, "/?t="+token)
	for i := range 4 {
		resp, body := a.postPIN(t, "pin=000"+fmt.Sprint(i))
		isPage(t, fmt.Sprintf("wrong PIN %d", i+1), resp, body, http.StatusUnauthorized, "Enter the PIN")
	}
	resp, body := a.postPIN(t, "pin=0009")
	isPage(t, "wrong PIN 5", resp, body, http.StatusTooManyRequests, "Too many wrong PINs")
	if !hasRefresh(body) {
		t.Errorf("lockout page %q does not reload itself", body)
	}
	resp, body = a.postPIN(t, "pin="+pin)
	isPage(t, "right PIN while locked", resp, body, http.StatusTooManyRequests, "Too many wrong PINs")
	resp, body = a.get(t, "/api/status")
	refused(t, "/api/status while locked", resp, body, http.StatusUnauthorized)

	// A new session from the same address is locked out too.
	b := newBrowser(t, ts, "")
	resp, body = b.get(t, "/?t="+token)
	isPage(t, "link from the locked address", resp, body, http.StatusUnauthorized, "Enter the PIN")
	resp, body = b.postPIN(t, "pin="+pin)
	isPage(t, "right PIN, new session, locked address", resp, body, http.StatusTooManyRequests, "Too many wrong PINs")
	nothingCaptured(t, ts, hub)
	noPIN(t, append(a.seen, b.seen...))
}

func TestPINSuccessResetsFailures(t *testing.T) {
	ts, f, _ := pinServer(t, access.Access{PIN: pin}, nil)
	a := newBrowser(t, ts, "")
	a.get(t, "/?t="+token)
	for range 4 {
		if resp, _ := a.postPIN(t, "pin=1111"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong PIN: status %d, want 401", resp.StatusCode)
		}
	}
	if resp, _ := a.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right PIN after 4 wrong ones: status %d, want 303", resp.StatusCode)
	}
	a.watch(t, f)

	// Another viewer from the same address starts from zero: four more wrong
	// PINs are not a lockout, the fifth is.
	b := newBrowser(t, ts, "")
	b.get(t, "/?t="+token)
	for i := range 4 {
		if resp, _ := b.postPIN(t, "pin=2222"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong PIN %d after a success: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	if resp, _ := b.postPIN(t, "pin=2222"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fifth wrong PIN: status %d, want 429", resp.StatusCode)
	}
}

// handlerClient sends requests straight to a server's Handler, from any address.
type handlerClient struct {
	h    http.Handler
	name string // the session cookie's name
}

func newHandlerClient(ts *testServer) *handlerClient {
	return &handlerClient{h: ts.srv.Handler(), name: ts.cookieName()}
}

func (hc *handlerClient) do(t *testing.T, method, target, remote, secret, form string) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = remote
	if form != "" {
		req.Header.Set("Content-Type", formType)
	}
	if secret != "" {
		req.AddCookie(&http.Cookie{Name: hc.name, Value: secret})
	}
	rec := httptest.NewRecorder()
	hc.h.ServeHTTP(rec, req)
	return rec
}

// link opens the link from remote and returns the session secret it sets.
func (hc *handlerClient) link(t *testing.T, remote string) string {
	t.Helper()
	rec := hc.do(t, http.MethodGet, "/?t="+token, remote, "", "")
	for _, c := range rec.Result().Cookies() {
		if c.Name == hc.name {
			return c.Value
		}
	}
	t.Fatalf("link from %s: status %d, no cookie", remote, rec.Code)
	return ""
}

// TestPINLockPerAddress: the lockout holds one address, not the viewers
// on other ones.
func TestPINLockPerAddress(t *testing.T) {
	ts, _, _ := pinServer(t, access.Access{PIN: pin}, nil)
	hc := newHandlerClient(ts)
	const a, a6, b = "192.0.2.1:40000", "[::ffff:192.0.2.1]:40001", "192.0.2.2:40000"

	sa := hc.link(t, a)
	for i := range 5 {
		rec := hc.do(t, http.MethodPost, "/pin", a, sa, "pin=9999")
		want := http.StatusUnauthorized
		if i == 4 {
			want = http.StatusTooManyRequests
		}
		if rec.Code != want {
			t.Fatalf("wrong PIN %d from %s: status %d, want %d", i+1, a, rec.Code, want)
		}
	}
	if rec := hc.do(t, http.MethodPost, "/pin", a, sa, "pin="+pin); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right PIN from the locked %s: status %d, want 429", a, rec.Code)
	}
	// The same address written as IPv4-mapped IPv6 is the same address.
	s6 := hc.link(t, a6)
	if rec := hc.do(t, http.MethodPost, "/pin", a6, s6, "pin="+pin); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right PIN from %s (the locked address, IPv4-mapped): status %d, want 429", a6, rec.Code)
	}

	sb := hc.link(t, b)
	if rec := hc.do(t, http.MethodPost, "/pin", b, sb, "pin="+pin); rec.Code != http.StatusSeeOther {
		t.Fatalf("right PIN from %s while %s is locked: status %d, want 303", b, a, rec.Code)
	}
	if rec := hc.do(t, http.MethodGet, "/", b, sb, ""); rec.Code != http.StatusOK {
		t.Errorf("/ from %s after its PIN: status %d, want 200", b, rec.Code)
	}
	if rec := hc.do(t, http.MethodGet, "/", a, sa, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("/ from the locked %s: status %d, want 401", a, rec.Code)
	}
}

// waitRecorder returns an OnWaiting that sends each call on the channel it returns.
func waitRecorder() (func(access.Viewer), chan access.Viewer) {
	ch := make(chan access.Viewer, 64)
	return func(v access.Viewer) { ch <- v }, ch
}

func nextWaiting(t *testing.T, ch <-chan access.Viewer) access.Viewer {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testenv.Patience):
		t.Fatalf("OnWaiting not called within %v", testenv.Patience)
	}
	return access.Viewer{}
}

var viewerIDRe = regexp.MustCompile(`^[0-9a-f]{8}$`)

// pollPage loads / every 20 ms while it answers the waiting page, and
// returns the first other answer.
func pollPage(t *testing.T, b *browser) (*http.Response, []byte) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for {
		resp, body := b.get(t, "/")
		if !bytes.Contains(body, []byte("Waiting for the presenter")) {
			return resp, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v", testenv.Patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApproval(t *testing.T) {
	// waitingViewer opens the link in a new browser and checks it is made to wait.
	waitingViewer := func(t *testing.T, ts *testServer, hub *fanout.Hub[*media.AudioChunk], calls <-chan access.Viewer) (*browser, access.Viewer) {
		t.Helper()
		b := newBrowser(t, ts, uaChromeAndroid)
		resp, body := b.get(t, "/?t="+token)
		isPage(t, "link", resp, body, http.StatusForbidden, "Waiting for the presenter")
		if !hasRefresh(body) {
			t.Errorf("waiting page %q does not reload itself", body)
		}
		if b.cookie() == nil {
			t.Fatal("the waiting page set no session cookie")
		}
		v := nextWaiting(t, calls)
		if !viewerIDRe.MatchString(v.ID) || v.Addr != "127.0.0.1" || v.Browser != "Chrome on Android" ||
			v.State != access.ViewerWaiting || v.Since.IsZero() {
			t.Errorf("OnWaiting got %+v, want an 8-digit id, 127.0.0.1, Chrome on Android, waiting", v)
		}
		for _, p := range append(mediaPaths, "/?t="+token) {
			resp, body := b.get(t, p)
			refused(t, p+" while waiting", resp, body, http.StatusForbidden)
		}
		vs, _ := ts.srv.Viewers()
		if i := slices.IndexFunc(vs, func(x access.Viewer) bool { return x.ID == v.ID }); i < 0 || vs[i].State != access.ViewerWaiting {
			t.Errorf("Viewers() = %+v, want %s waiting", vs, v.ID)
		}
		nothingCaptured(t, ts, hub)
		return b, v
	}

	t.Run("allow", func(t *testing.T) {
		onWaiting, calls := waitRecorder()
		ts, f, hub := pinServer(t, access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Minute}, onWaiting)
		b, v := waitingViewer(t, ts, hub, calls)
		if err := ts.srv.Allow(v.ID); err != nil {
			t.Fatalf("Allow: %v", err)
		}
		if resp, body := b.get(t, "/"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, indexHTML) {
			t.Fatalf("/ once allowed: status %d %q, want the viewer page", resp.StatusCode, body)
		}
		b.watch(t, f)
		testenv.NothingOn(t, calls, "OnWaiting calls")
	})

	t.Run("deny", func(t *testing.T) {
		onWaiting, calls := waitRecorder()
		ts, _, hub := pinServer(t, access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Minute}, onWaiting)
		b, v := waitingViewer(t, ts, hub, calls)
		if err := ts.srv.Deny(v.ID); err != nil {
			t.Fatalf("Deny: %v", err)
		}
		resp, body := b.get(t, "/")
		isPage(t, "/ once denied", resp, body, http.StatusForbidden, "Not let in")
		for _, p := range append(mediaPaths, "/?t="+token) {
			resp, body := b.get(t, p)
			refused(t, p+" once denied", resp, body, http.StatusForbidden)
		}
		nothingCaptured(t, ts, hub)
	})

	cases := []struct {
		name    string
		approve access.Approval
		allowed bool
	}{
		{"nobody answers: ask denies", access.ApproveAsk, false},
		{"nobody answers: auto allows", access.ApproveAuto, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const wait = 300 * time.Millisecond
			onWaiting, calls := waitRecorder()
			ts, f, hub := pinServer(t, access.Access{Approve: tc.approve, ApproveTimeout: wait}, onWaiting)
			start := time.Now()
			b, _ := waitingViewer(t, ts, hub, calls)
			resp, body := pollPage(t, b)
			if waited := time.Since(start); waited < wait {
				t.Errorf("answered after %v, before the %v timeout", waited, wait)
			}
			if !tc.allowed {
				isPage(t, "/ after the timeout", resp, body, http.StatusForbidden, "Not let in")
				resp, body := b.get(t, "/stream.mjpg")
				refused(t, "/stream.mjpg after the timeout", resp, body, http.StatusForbidden)
				nothingCaptured(t, ts, hub)
				return
			}
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, indexHTML) {
				t.Fatalf("/ after the timeout: status %d %q, want the viewer page", resp.StatusCode, body)
			}
			b.watch(t, f)
		})
	}

	t.Run("PIN first, then the presenter", func(t *testing.T) {
		onWaiting, calls := waitRecorder()
		ts, f, _ := pinServer(t, access.Access{PIN: pin, Approve: access.ApproveAsk, ApproveTimeout: time.Minute}, onWaiting)
		b := newBrowser(t, ts, uaFirefoxWindows)
		resp, body := b.get(t, "/?t="+token)
		isPage(t, "link", resp, body, http.StatusUnauthorized, "Enter the PIN")
		resp, body = b.postPIN(t, "pin=0000")
		isPage(t, "wrong PIN", resp, body, http.StatusUnauthorized, "Enter the PIN")
		time.Sleep(quietly) // OnWaiting runs on its own goroutine: give a wrong call time to show
		testenv.NothingOn(t, calls, "OnWaiting before the right PIN")

		if resp, _ := b.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("right PIN: status %d, want 303", resp.StatusCode)
		}
		v := nextWaiting(t, calls)
		if v.Browser != "Firefox on Windows" || v.State != access.ViewerWaiting {
			t.Errorf("OnWaiting got %+v after the PIN", v)
		}
		resp, body = b.get(t, "/")
		isPage(t, "/ after the PIN", resp, body, http.StatusForbidden, "Waiting for the presenter")
		if err := ts.srv.Allow(v.ID); err != nil {
			t.Fatal(err)
		}
		if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("/ once allowed: status %d", resp.StatusCode)
		}
		b.watch(t, f)
		testenv.NothingOn(t, calls, "OnWaiting calls")
		noPIN(t, b.seen)
	})
}

// ended waits up to d for r to reach its end or fail, draining it.
func ended(r io.Reader, d time.Duration) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("still open after %v", d)
	}
}

func TestDisconnect(t *testing.T) {
	ts, f, _ := pinServer(t, access.Access{}, nil)
	b := newBrowser(t, ts, uaSafariIPhone)
	if resp, _ := b.get(t, "/?t="+token); resp.StatusCode != http.StatusOK {
		t.Fatalf("link: status %d", resp.StatusCode)
	}
	video := b.watch(t, f)

	wav := b.open(t, http.MethodGet, "/audio.wav", "", nil)
	t.Cleanup(func() { wav.Body.Close() })
	if wav.StatusCode != http.StatusOK {
		t.Fatalf("/audio.wav: status %d", wav.StatusCode)
	}
	riff := make([]byte, 44)
	if _, err := io.ReadFull(wav.Body, riff); err != nil || string(riff[:4]) != "RIFF" {
		t.Fatalf("/audio.wav: read %q, %v; want a WAV header", riff, err)
	}

	ctx := timeout(t)
	ws, _, err := dialAudio(t, ctx, ts, "", http.Header{"Cookie": {b.cookie().String()}})
	if err != nil {
		t.Fatalf("/ws/audio with the cookie: %v", err)
	}
	if typ, _, err := ws.Read(ctx); err != nil || typ != websocket.MessageText {
		t.Fatalf("/ws/audio first message: %v, %v; want the format", typ, err)
	}

	vs, _ := ts.srv.Viewers()
	if len(vs) != 1 {
		t.Fatalf("Viewers() = %+v, want the one viewer", vs)
	}
	v := vs[0]
	if v.State != access.ViewerAllowed || v.Streams != 3 || !v.Present || v.Addr != "127.0.0.1" || v.Browser != "Safari on iPhone" {
		t.Errorf("Viewers()[0] = %+v, want watching, 3 streams, present, 127.0.0.1, Safari on iPhone", v)
	}
	_, gen := ts.srv.Viewers()

	start := time.Now()
	if err := ts.srv.Disconnect(v.ID); err != nil {
		t.Fatalf("Disconnect(%s): %v", v.ID, err)
	}
	const within = time.Second
	if err := ended(video.Body, within); err != nil {
		t.Errorf("/stream.mjpg after Disconnect: %v", err)
	}
	if err := ended(wav.Body, within); err != nil {
		t.Errorf("/audio.wav after Disconnect: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		if _, _, err := ws.Read(wctx); err != nil {
			if wctx.Err() != nil {
				t.Errorf("/ws/audio after Disconnect: still open after %v", within)
			}
			break
		}
	}
	t.Logf("streams ended %v after Disconnect", time.Since(start))

	testenv.Eventually(t, "no streams left", func() bool {
		vs, _ := ts.srv.Viewers()
		return len(vs) == 1 && vs[0].Streams == 0
	})
	vs, g := ts.srv.Viewers()
	if vs[0].State != access.ViewerDisconnected || g == gen {
		t.Errorf("Viewers() after Disconnect = %+v (generation %d, was %d), want disconnected and a new generation", vs, g, gen)
	}

	resp, body := b.get(t, "/api/status")
	refused(t, "/api/status once disconnected", resp, body, http.StatusForbidden)
	resp, body = b.get(t, "/")
	isPage(t, "/ once disconnected", resp, body, http.StatusForbidden, "Disconnected")
	resp, body = b.get(t, "/?t="+token)
	isPage(t, "the link again, same cookie", resp, body, http.StatusForbidden, "Disconnected")
	for _, p := range mediaPaths {
		resp, body := b.get(t, p)
		refused(t, p+" once disconnected", resp, body, http.StatusForbidden)
	}
	if _, resp, err := dialAudio(t, ctx, ts, "", http.Header{"Cookie": {b.cookie().String()}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("/ws/audio once disconnected: %v, want 403", err)
	}

	if err := ts.srv.Allow(v.ID); err != nil {
		t.Fatalf("Allow after Disconnect: %v", err)
	}
	if resp, body := b.get(t, "/"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, indexHTML) {
		t.Fatalf("/ once let back in: status %d %q", resp.StatusCode, body)
	}
	b.watch(t, f)

	for name, fn := range map[string]func(string) error{
		"Disconnect": ts.srv.Disconnect, "Allow": ts.srv.Allow, "Deny": ts.srv.Deny,
	} {
		for _, id := range []string{"", "00000000", v.ID + "0", strings.ToUpper(v.ID) + "X"} {
			if err := fn(id); err == nil {
				t.Errorf("%s(%q) of an unknown viewer: no error", name, id)
			}
		}
	}
}

func TestMaxViewers(t *testing.T) {
	full := func(t *testing.T, ts *testServer, what string) {
		t.Helper()
		b := newBrowser(t, ts, "")
		resp, body := b.get(t, "/?t="+token)
		isPage(t, what, resp, body, http.StatusServiceUnavailable, "This share is full")
		if !hasRefresh(body) {
			t.Errorf("%s: the full page %q does not reload itself", what, body)
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("%s: the full page sets a cookie: %q", what, c)
		}
		resp, body = b.get(t, "/stream.mjpg?t="+token)
		refused(t, what+": /stream.mjpg", resp, body, http.StatusServiceUnavailable)
	}
	in := func(t *testing.T, ts *testServer) *browser {
		t.Helper()
		b := newBrowser(t, ts, "")
		if resp, body := b.get(t, "/?t="+token); resp.StatusCode != http.StatusOK {
			t.Fatalf("link: status %d %q, want 200", resp.StatusCode, body)
		}
		return b
	}

	t.Run("two browsers fill two places", func(t *testing.T) {
		ts, f, _ := pinServer(t, access.Access{MaxViewers: 2}, nil)
		a, b := in(t, ts), in(t, ts)
		full(t, ts, "third browser")
		// Those in stay in, and may stream.
		a.watch(t, f)
		b.watch(t, f)
		if resp, _ := a.get(t, "/"); resp.StatusCode != http.StatusOK {
			t.Errorf("/ again for a viewer already in: status %d", resp.StatusCode)
		}
		if vs, _ := ts.srv.Viewers(); len(vs) != 2 {
			t.Errorf("Viewers() = %+v, want 2", vs)
		}
	})

	t.Run("a script polling without cookies takes no place", func(t *testing.T) {
		ts, _, _ := pinServer(t, access.Access{MaxViewers: 2}, nil)
		in(t, ts)
		for i := range 30 {
			resp, body := newBrowser(t, ts, "curl/8.5.0").get(t, "/api/status?t="+token)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("poll %d: status %d %q", i, resp.StatusCode, body)
			}
		}
		in(t, ts)
		full(t, ts, "third browser after the polls")
		if vs, _ := ts.srv.Viewers(); len(vs) != 2 {
			t.Errorf("Viewers() = %+v, want the 2 browsers only", vs)
		}
	})

	t.Run("streams take places", func(t *testing.T) {
		ts, f, _ := pinServer(t, access.Access{MaxViewers: 2}, nil)
		players := []*browser{newBrowser(t, ts, "VLC/3.0.20 LibVLC/3.0.20"), newBrowser(t, ts, "Lavf/60.16.100")}
		var streams []*http.Response
		for _, p := range players {
			p.get(t, "/api/status?t="+token) // the cookie, but no page
			streams = append(streams, p.watch(t, f))
		}
		full(t, ts, "browser while two players stream")
		// Once a player (which never loaded the page) hangs up, its place is free.
		streams[0].Body.Close()
		testenv.Eventually(t, "the stream released", func() bool { return ts.srv.Status().Viewers == 1 })
		deadline := time.Now().Add(testenv.Patience)
		for {
			b := newBrowser(t, ts, "")
			resp, _ := b.get(t, "/?t="+token)
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("link after a player left: status %d, want 200", resp.StatusCode)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The player that left finds the share full when it comes back.
		resp, body := players[0].get(t, "/stream.mjpg")
		refused(t, "/stream.mjpg of the player that left", resp, body, http.StatusServiceUnavailable)
	})

	t.Run("no limit", func(t *testing.T) {
		ts, _, _ := pinServer(t, access.Access{MaxViewers: -1}, nil)
		for i := range 50 {
			resp := ts.get(t, timeout(t), "/?t="+token)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("viewer %d: status %d, want 200", i+1, resp.StatusCode)
			}
		}
		if vs, _ := ts.srv.Viewers(); len(vs) != 50 {
			t.Errorf("Viewers() has %d, want 50", len(vs))
		}
	})

	t.Run("the default", func(t *testing.T) {
		ts, _, _ := pinServer(t, access.Access{}, nil)
		for i := range access.DefaultMaxViewers {
			resp := ts.get(t, timeout(t), "/?t="+token)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("viewer %d: status %d, want 200", i+1, resp.StatusCode)
			}
		}
		full(t, ts, fmt.Sprintf("viewer %d", access.DefaultMaxViewers+1))
	})
}

// TestMaxViewersWithPIN: viewers on the PIN page take no place, so more of
// them may pass it than there are places; the limit must still hold once
// they are through.
func TestMaxViewersWithPIN(t *testing.T) {
	ts, f, _ := pinServer(t, access.Access{PIN: pin, MaxViewers: 1}, nil)
	a, b := newBrowser(t, ts, ""), newBrowser(t, ts, "")
	for _, v := range []*browser{a, b} {
		resp, body := v.get(t, "/?t="+token)
		isPage(t, "link", resp, body, http.StatusUnauthorized, "Enter the PIN")
	}
	for _, v := range []*browser{a, b} {
		if resp, _ := v.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("right PIN: status %d, want 303", resp.StatusCode)
		}
	}
	if resp, _ := a.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first viewer's page: status %d, want 200", resp.StatusCode)
	}
	a.watch(t, f)
	resp, body := b.get(t, "/")
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("access.go checkPIN: a viewer who passed the PIN counts as present from its PIN page (session.page), " +
			"so enter() skips the room check: a second viewer watches with MaxViewers 1")
	}
	isPage(t, "second viewer's page", resp, body, http.StatusServiceUnavailable, "This share is full")
	resp, body = b.get(t, "/stream.mjpg")
	refused(t, "second viewer's stream", resp, body, http.StatusServiceUnavailable)
}

func TestPresenterEndpoints(t *testing.T) {
	onWaiting, calls := waitRecorder()
	ts, _, _ := pinServer(t, access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Minute}, onWaiting)
	v := newBrowser(t, ts, uaFirefoxWindows)
	v.get(t, "/?t="+token)
	id := nextWaiting(t, calls).ID
	waiting := func(t *testing.T, b *browser, what string) {
		t.Helper()
		resp, body := b.get(t, "/")
		isPage(t, what, resp, body, http.StatusForbidden, "Waiting for the presenter")
	}

	t.Run("list", func(t *testing.T) {
		resp, body := newBrowser(t, ts, "").get(t, "/api/viewers?t="+token)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d, Content-Type %q, Cache-Control %q; want 200, application/json, no-store",
				resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
		}
		var vs []access.Viewer
		if err := json.Unmarshal(body, &vs); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if len(vs) != 1 || vs[0].ID != id || vs[0].State != access.ViewerWaiting || vs[0].Addr != "127.0.0.1" ||
			vs[0].Browser != "Firefox on Windows" {
			t.Errorf("list %s, want the one waiting Firefox viewer %s", body, id)
		}
	})

	cases := []struct {
		name, method, target string
		cookie               bool // send the waiting viewer's cookie
		status               int
	}{
		{"list, wrong token", http.MethodGet, "/api/viewers?t=" + wrongToken, false, http.StatusForbidden},
		{"list, no token", http.MethodGet, "/api/viewers", false, http.StatusForbidden},
		{"list, repeated token", http.MethodGet, "/api/viewers?t=" + token + "&t=" + token, false, http.StatusForbidden},
		{"list, bad query", http.MethodGet, "/api/viewers?t=" + token + "&x=%zz", false, http.StatusForbidden},
		{"list, the waiting viewer's cookie", http.MethodGet, "/api/viewers", true, http.StatusForbidden},
		{"allow, wrong token", http.MethodPost, "/api/viewers/" + id + "/allow?t=" + wrongToken, false, http.StatusForbidden},
		{"allow, no token", http.MethodPost, "/api/viewers/" + id + "/allow", false, http.StatusForbidden},
		{"allow, uppercased token", http.MethodPost, "/api/viewers/" + id + "/allow?t=" + strings.ToUpper(token), false, http.StatusForbidden},
		{"allow, the waiting viewer itself", http.MethodPost, "/api/viewers/" + id + "/allow", true, http.StatusForbidden},
		{"unknown action", http.MethodPost, "/api/viewers/" + id + "/kick?t=" + token, false, http.StatusNotFound},
		{"action in capitals", http.MethodPost, "/api/viewers/" + id + "/ALLOW?t=" + token, false, http.StatusNotFound},
		{"unknown id", http.MethodPost, "/api/viewers/00000000/allow?t=" + token, false, http.StatusNotFound},
		{"id in capitals", http.MethodPost, "/api/viewers/" + strings.ToUpper(id) + "X/allow?t=" + token, false, http.StatusNotFound},
		{"GET an action", http.MethodGet, "/api/viewers/" + id + "/allow?t=" + token, false, http.StatusMethodNotAllowed},
		{"POST the list", http.MethodPost, "/api/viewers?t=" + token, false, http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cookies []*http.Cookie
			if tc.cookie {
				cookies = append(cookies, v.cookie())
			}
			resp := ts.do(t, timeout(t), tc.method, tc.target, cookies...)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if bytes.Contains(body, []byte(`"addr"`)) {
				t.Errorf("refused answer lists viewers: %s", body)
			}
			waiting(t, v, "the viewer after "+tc.name)
		})
	}

	t.Run("not from this computer", func(t *testing.T) {
		hc := newHandlerClient(ts)
		for _, remote := range []string{"192.0.2.7:5555", "[2001:db8::7]:5555", "10.0.0.2:1"} {
			for _, r := range []struct{ method, target string }{
				{http.MethodGet, "/api/viewers?t=" + token},
				{http.MethodPost, "/api/viewers/" + id + "/allow?t=" + token},
				{http.MethodPost, "/api/viewers/" + id + "/disconnect?t=" + token},
			} {
				rec := hc.do(t, r.method, r.target, remote, "", "")
				if rec.Code != http.StatusForbidden {
					t.Errorf("%s %s from %s: status %d, want 403", r.method, r.target, remote, rec.Code)
				}
				if bytes.Contains(rec.Body.Bytes(), []byte(id)) {
					t.Errorf("%s %s from %s: answer names the viewer: %s", r.method, r.target, remote, rec.Body)
				}
			}
		}
		waiting(t, v, "the viewer after requests from other computers")
		// IPv6 loopback is this computer too.
		if rec := hc.do(t, http.MethodGet, "/api/viewers?t="+token, "[::1]:5555", "", ""); rec.Code != http.StatusOK {
			t.Errorf("list from [::1]: status %d, want 200", rec.Code)
		}
	})

	t.Run("actions", func(t *testing.T) {
		act := func(t *testing.T, id, action string) {
			t.Helper()
			resp := ts.do(t, timeout(t), http.MethodPost, "/api/viewers/"+id+"/"+action+"?t="+token)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("%s %s: status %d %q, want 204 and no body", action, id, resp.StatusCode, body)
			}
		}
		pageIs := func(t *testing.T, b *browser, code int, title string) {
			t.Helper()
			resp, body := b.get(t, "/")
			if code == http.StatusOK {
				if resp.StatusCode != code || !bytes.Equal(body, indexHTML) {
					t.Fatalf("/: status %d %q, want the viewer page", resp.StatusCode, body)
				}
				return
			}
			isPage(t, "/", resp, body, code, title)
		}
		act(t, id, "allow")
		pageIs(t, v, http.StatusOK, "")
		// A viewer who may watch, on this computer, is the presenter's own browser.
		if resp, _ := v.get(t, "/api/viewers"); resp.StatusCode != http.StatusOK {
			t.Errorf("list with an allowed viewer's cookie from this computer: status %d, want 200", resp.StatusCode)
		}
		act(t, id, "disconnect")
		pageIs(t, v, http.StatusForbidden, "Disconnected")
		if resp, _ := v.get(t, "/api/viewers"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("list with a disconnected viewer's cookie: status %d, want 403", resp.StatusCode)
		}
		act(t, id, "allow")
		pageIs(t, v, http.StatusOK, "")
		act(t, id, "deny") // sends away one already watching
		pageIs(t, v, http.StatusForbidden, "Disconnected")

		w := newBrowser(t, ts, "")
		w.get(t, "/?t="+token)
		wid := nextWaiting(t, calls).ID
		act(t, wid, "deny")
		pageIs(t, w, http.StatusForbidden, "Not let in")
	})
}

// TestViewerListOnlyForLoopback: /api/status names the viewers only to a
// request from this computer.
func TestViewerListOnlyForLoopback(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	hc := newHandlerClient(ts)
	const remote = "192.0.2.9:1234"
	secret := hc.link(t, remote)
	for _, target := range []string{"/api/status", "/api/status?t=" + token} {
		rec := hc.do(t, http.MethodGet, target, remote, secret, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s from %s: status %d", target, remote, rec.Code)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if l, ok := m["viewer_list"]; ok {
			t.Errorf("%s from %s: viewer_list %v, want none", target, remote, l)
		}
	}
	st, _ := getStatus(t, ts, "")
	if len(st.ViewerList) != 1 || st.ViewerList[0].Addr != "192.0.2.9" {
		t.Errorf("viewer_list from this computer = %+v, want the viewer at 192.0.2.9", st.ViewerList)
	}
}

// TestNewRefusesInvalidAccess: New and SetAccess refuse what Access.Validate
// refuses (whose own cases are in package access).
func TestNewRefusesInvalidAccess(t *testing.T) {
	cases := []struct {
		name string
		acc  access.Access
		ok   bool
	}{
		{"zero", access.Access{}, true},
		{"everything", access.Access{PIN: pin, Approve: access.ApproveAsk, ApproveTimeout: time.Minute, MaxViewers: 5}, true},
		{"short PIN", access.Access{PIN: "12"}, false},
		{"unknown approval", access.Access{Approve: "maybe"}, false},
		{"negative limit", access.Access{MaxViewers: -2}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newVideoHub(t, newFeed())
			srv, err := web.New(web.Config{Listen: "127.0.0.1:0", Token: token, Access: tc.acc, Logger: quiet, Video: b})
			if err == nil {
				srv.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("New with %+v: %v, want ok=%v", tc.acc, err, tc.ok)
			}
		})
	}
	ts := startServer(t, web.Config{}, newFeed())
	if err := ts.srv.SetAccess(access.Access{PIN: "12"}); err == nil {
		t.Error("SetAccess with a 2-digit PIN: no error")
	}
	if a := ts.srv.Access(); a != (access.Access{}) {
		t.Errorf("Access() = %+v after a refused SetAccess, want it unchanged", a)
	}
}

// TestAccessApprovalSpellings: Validate (and so New) accepts every spelling
// ParseApproval reads, such as "off" or "AUTO"; a server given one must then
// do what ParseApproval reads it as, or Validate must refuse it.
func TestAccessApprovalSpellings(t *testing.T) {
	for _, spelling := range []string{"off", "no", "false", "on", "ASK", "AUTO"} {
		t.Run(spelling, func(t *testing.T) {
			acc := access.Access{Approve: access.Approval(spelling), ApproveTimeout: 200 * time.Millisecond}
			if acc.Validate() != nil {
				return // refused: fine
			}
			meant, _ := access.ParseApproval(spelling)
			ts, _, _ := pinServer(t, acc, nil)
			b := newBrowser(t, ts, "")
			resp, _ := b.get(t, "/?t="+token)
			if meant == access.ApproveOff {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("access.go: Validate accepts Approve %q (ParseApproval: off), but the server compares the raw "+
						"value with ApproveOff (startLocked) and makes the viewer wait: status %d, want 200", spelling, resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("Approve %q (ParseApproval: %s): link status %d, want 403 waiting", spelling, meant, resp.StatusCode)
			}
			resp, _ = pollPage(t, b)
			if allowed := resp.StatusCode == http.StatusOK; allowed != (meant == access.ApproveAuto) {
				t.Fatalf("access.go: Validate accepts Approve %q (ParseApproval: %s), but the server compares the raw value "+
					"with ApproveAuto (askLocked): after the timeout status %d", spelling, meant, resp.StatusCode)
			}
		})
	}
}

// rawRequest sends req as it is over a new connection and reads the answer
// (at most 64 KiB of its body).
func rawRequest(t *testing.T, ts *testServer, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", ts.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(testenv.Patience)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, body
}

// TestBadInput: requests no browser sends get the right refusal, never a
// panic or a byte of media, and the server goes on serving. TestAuth covers
// the token's own variants, TestMethods the main media routes' methods.
func TestBadInput(t *testing.T) {
	ts, _, _ := pinServer(t, access.Access{MaxViewers: -1}, nil)
	host := ts.srv.Addr().String()
	line := func(method, target string) string {
		return method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}
	big := strings.Repeat("a", 64<<10)

	type tc struct {
		name, req string
		status    int
		location  string // for redirects
	}
	cases := []tc{
		// Path traversal: never the viewer page, a file outside static/, or a
		// guarded route without the token.
		{"dot-dot out of static", line("GET", "/static/../index.html"), http.StatusTemporaryRedirect, "/index.html"},
		{"escaped dot-dot out of static", line("GET", "/static/%2e%2e/index.html"), http.StatusMovedPermanently, "./"},
		{"escaped dot-dot to /etc/passwd", line("GET", "/static/%2e%2e/%2e%2e/etc/passwd"), http.StatusNotFound, ""},
		{"escaped dot-dot to the stream", line("GET", "/static/%2e%2e/stream.mjpg"), http.StatusNotFound, ""},
		{"escaped slashes", line("GET", "/static/..%2f..%2fetc/passwd"), http.StatusNotFound, ""},
		{"double slash", line("GET", "//etc/passwd"), http.StatusTemporaryRedirect, "/etc/passwd"},
		{"dot-dot escaped slash", line("GET", "/..%2f"), http.StatusNotFound, ""},
		{"dot segment before the stream", line("GET", "/./stream.mjpg"), http.StatusTemporaryRedirect, "/stream.mjpg"},
		{"escaped dot before the stream", line("GET", "/%2e/stream.mjpg"), http.StatusNotFound, ""},
		{"NUL after the stream", line("GET", "/stream.mjpg%00?t="+token), http.StatusNotFound, ""},
		{"stream in capitals", line("GET", "/STREAM.MJPG?t="+token), http.StatusNotFound, ""},
		{"trailing slash", line("GET", "/stream.mjpg/?t="+token), http.StatusNotFound, ""},
		{"static folder", line("GET", "/static/"), http.StatusNotFound, ""},
		// Huge headers.
		{"64 KB header", "GET /api/status?t=" + token + " HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + big + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, ""},
		{"64 KB cookie", "GET /stream.mjpg HTTP/1.1\r\nHost: " + host + "\r\nCookie: " + ts.cookieName() + "=" + big + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, ""},
		{"many headers", "GET /stream.mjpg?t=" + token + " HTTP/1.1\r\nHost: " + host + "\r\n" +
			strings.Repeat("X-A: "+strings.Repeat("b", 100)+"\r\n", 400) + "\r\n", http.StatusRequestHeaderFieldsTooLarge, ""},
		// Overlong URLs.
		{"8 KB token", line("GET", "/stream.mjpg?t="+strings.Repeat("a", 8<<10)), http.StatusUnauthorized, ""},
		{"8 KB path", line("GET", "/"+strings.Repeat("a", 8<<10)), http.StatusNotFound, ""},
		{"64 KB path", line("GET", "/"+big), http.StatusRequestHeaderFieldsTooLarge, ""},
		{"64 KB query after the token", line("GET", "/stream.mjpg?t="+token+"&x="+big), http.StatusRequestHeaderFieldsTooLarge, ""},
		// Values that are not UTF-8.
		{"token not UTF-8", line("GET", "/api/status?t=%ff%fe"), http.StatusUnauthorized, ""},
		{"token overlong UTF-8", line("GET", "/stream.mjpg?t=%c0%af"), http.StatusUnauthorized, ""},
		{"token then a bad byte", line("GET", "/snapshot.jpg?t="+token+"%ff"), http.StatusUnauthorized, ""},
		{"page with a token not UTF-8", line("GET", "/?t=%ff%fe"), http.StatusUnauthorized, ""},
		{"raw bytes in the token", line("GET", "/api/status?t=\xff\xfe"), http.StatusUnauthorized, ""},
		{"space in the URL", line("GET", "/api/status?t=a b"), http.StatusBadRequest, ""},
		{"PIN form with a bad token", line("POST", "/pin?t=%ff"), http.StatusUnauthorized, ""},
		// Not a path at all.
		{"asterisk", line("GET", "*"), http.StatusBadRequest, ""},
		{"absolute URL without the token", line("GET", "http://evil.example/stream.mjpg"), http.StatusUnauthorized, ""},
	}
	// Wrong methods on every route; TestMethods has POST, PUT and DELETE on
	// the stream, the snapshot and the status.
	routes := []struct {
		target string
		wrong  []string
	}{
		{"/?t=" + token, []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/stream.mjpg?t=" + token, []string{"PATCH"}},
		{"/snapshot.jpg?t=" + token, []string{"PATCH"}},
		{"/api/status?t=" + token, []string{"PATCH"}},
		{"/audio.wav?t=" + token, []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/ws/audio?t=" + token, []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/api/viewers?t=" + token, []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/api/viewers/00000000/allow?t=" + token, []string{"GET", "PUT", "DELETE", "PATCH"}},
		{"/pin", []string{"GET", "PUT", "DELETE", "PATCH"}},
		{"/static/viewer.js", []string{"POST", "PUT", "DELETE", "PATCH"}},
		{"/favicon.ico", []string{"POST", "PUT", "DELETE", "PATCH"}},
	}
	for _, r := range routes {
		for _, m := range r.wrong {
			cases = append(cases, tc{m + " " + r.target, m + " " + r.target + " HTTP/1.1\r\nHost: " + host +
				"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", http.StatusMethodNotAllowed, ""})
		}
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := rawRequest(t, ts, c.req)
			refused(t, c.name, resp, body, c.status)
			if bytes.Equal(body, indexHTML) || bytes.Contains(body, viewerJS) {
				t.Errorf("answer is a served file: %q", body)
			}
			if v := resp.Header.Values("Set-Cookie"); len(v) > 0 {
				t.Errorf("refused answer sets a cookie: %q", v)
			}
			if loc := resp.Header.Get("Location"); loc != c.location {
				t.Errorf("Location %q, want %q", loc, c.location)
			}
			if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			// The server goes on serving.
			good := ts.get(t, timeout(t), "/api/status?t="+token)
			good.Body.Close()
			if good.StatusCode != http.StatusOK {
				t.Fatalf("a good request after this one: status %d", good.StatusCode)
			}
		})
	}
	if n := ts.fd.Runs(); n != 0 {
		t.Errorf("bad requests ran the screen source %d times", n)
	}

	t.Run("status with a viewer id not UTF-8", func(t *testing.T) {
		for _, v := range []string{"%ff", "%c0%af", "%00", "abc%ff"} {
			_, m := getStatus(t, ts, "&v="+v)
			if m["you"] != nil {
				t.Errorf("v=%s: you = %v, want none", v, m["you"])
			}
		}
	})
}
