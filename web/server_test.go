package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

// token is the fixed share token of the test servers.
const token = "Deskcast-test_token-0123456789ab"

// partHead is what opens every MJPEG part in the default layout.
const partHead = "--deskcastframe\r\nContent-Type: image/jpeg\r\n\r\n"

var (
	indexHTML = []byte("<!doctype html><title>Deskcast viewer</title>")
	viewerJS  = []byte("console.log('viewer');\n")
	iconPNG   = encodePNG()
)

func encodePNG() []byte {
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func testAssets() fstest.MapFS {
	return fstest.MapFS{
		"index.html":       {Data: indexHTML},
		"static/icon.png":  {Data: iconPNG},
		"static/viewer.js": {Data: viewerJS},
	}
}

// jpegFrame encodes a small real JPEG of w×h pixels in one shade of grey.
func jpegFrame(t *testing.T, w, h int, shade uint8) *media.Frame {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return &media.Frame{Codec: media.JPEG, Keyframe: true, Data: buf.Bytes(), Width: w, Height: h, Captured: time.Now(),
		Grab: 2 * time.Millisecond, Encode: 3 * time.Millisecond}
}

// repeat returns a feed's first-frame function that emits a fresh copy of f
// on every Run, so f itself is never published and never changes.
func repeat(f *media.Frame) func() *media.Frame {
	return func() *media.Frame {
		c := *f
		return &c
	}
}

// testServer is a Server on 127.0.0.1 over a video hub fed by fd.
type testServer struct {
	srv    *web.Server
	b      *fanout.Hub[*media.Frame]
	fd     *feed
	tr     *http.Transport
	client *http.Client
	base   string
}

func startServer(t *testing.T, cfg web.Config, fd *feed) *testServer {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections) // runs last, after the server is gone
	b := newVideoHub(t, fd)
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Token == "" {
		cfg.Token = token
	}
	if cfg.Assets == nil {
		cfg.Assets = testAssets()
	}
	cfg.Logger = quiet
	cfg.Video = b
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return &testServer{srv: srv, b: b, fd: fd, tr: tr, client: client, base: "http://" + srv.Addr().String()}
}

// do sends a request to the server; the caller closes the body.
func (ts *testServer) do(t *testing.T, ctx context.Context, method, target string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, ts.base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

func (ts *testServer) get(t *testing.T, ctx context.Context, target string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	return ts.do(t, ctx, http.MethodGet, target, cookies...)
}

// sessionCookie opens the link once and returns the session cookie it sets.
func (ts *testServer) sessionCookie(t *testing.T) *http.Cookie {
	t.Helper()
	resp := ts.get(t, timeout(t), "/api/status?t="+token)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == ts.cookieName() {
			return c
		}
	}
	t.Fatalf("opening the link set no cookie (status %d)", resp.StatusCode)
	return nil
}

// flipLast changes the last hex digit of s.
func flipLast(s string) string {
	if strings.HasSuffix(s, "0") {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

func (ts *testServer) cookieName() string { return "deskcast_" + strconv.Itoa(ts.srv.Port()) }

// timeout returns a context that ends after 2×testenv.Patience, so a read that never
// completes fails the test instead of hanging it.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*testenv.Patience)
	t.Cleanup(cancel)
	return ctx
}

// refusedCleanly checks that a refused response carries no media at all.
func refusedCleanly(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if bytes.Contains(body, []byte{0xFF, 0xD8}) {
		t.Errorf("refused response carries JPEG bytes (FF D8): %q", body)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "multipart/") {
		t.Errorf("refused response has Content-Type %q", ct)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("refused response sets a cookie: %q", c)
	}
}

// mediaBoundary checks resp is an MJPEG stream and returns its boundary.
func mediaBoundary(t *testing.T, resp *http.Response) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q (%v), want multipart/x-mixed-replace with a boundary", resp.Header.Get("Content-Type"), err)
	}
	return params["boundary"]
}

// readPart reads the next part of mr whole.
func readPart(t *testing.T, mr *multipart.Reader) (*multipart.Part, []byte) {
	t.Helper()
	p, err := mr.NextPart()
	if err != nil {
		t.Fatalf("NextPart: %v", err)
	}
	body, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("reading part: %v", err)
	}
	return p, body
}

func TestAuth(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 16, 16, 128)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{Access: access.Access{MaxViewers: -1}}, fd)
	good := ts.sessionCookie(t)
	wrong := "Deskcast-test_token-0123456789ac" // same length, last character differs
	wrongCookie := &http.Cookie{Name: ts.cookieName(), Value: flipLast(good.Value)}

	cases := []struct {
		name   string
		query  string
		cookie *http.Cookie
		ok     bool
	}{
		{"no token", "", nil, false},
		{"valid token", "?t=" + token, nil, true},
		{"wrong token", "?t=" + wrong, nil, false},
		{"uppercased token", "?t=" + strings.ToUpper(token), nil, false},
		{"overlong token", "?t=" + token + "0", nil, false},
		{"token prefix", "?t=" + token[:len(token)-1], nil, false},
		{"empty token", "?t=", nil, false},
		{"repeated valid token", "?t=" + token + "&t=" + token, nil, false},
		{"token in another parameter", "?token=" + token, nil, false},
		{"valid cookie", "", good, true},
		{"cookie of another port", "", &http.Cookie{Name: "deskcast_1", Value: good.Value}, false},
		{"wrong cookie", "", wrongCookie, false},
		{"the token as cookie", "", &http.Cookie{Name: ts.cookieName(), Value: token}, false},
		{"wrong token with valid cookie", "?t=" + wrong, good, false},
		{"empty token with valid cookie", "?t=", good, false},
		{"valid token with wrong cookie", "?t=" + token, wrongCookie, true},
	}
	paths := []string{"/", "/stream.mjpg", "/snapshot.jpg", "/api/status"}
	for _, path := range paths {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				ctx := timeout(t)
				var cookies []*http.Cookie
				if tc.cookie != nil {
					cookies = append(cookies, tc.cookie)
				}
				resp := ts.get(t, ctx, path+tc.query, cookies...)
				defer resp.Body.Close()
				for h, want := range map[string]string{
					"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
					"X-Frame-Options": "DENY", "Cache-Control": "no-store",
				} {
					if got := resp.Header.Get(h); got != want {
						t.Errorf("%s = %q, want %q", h, got, want)
					}
				}
				if !tc.ok {
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatalf("reading body: %v", err)
					}
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401", resp.StatusCode)
					}
					refusedCleanly(t, resp, body)
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				if strings.Contains(tc.query, "t="+token) {
					checkTokenCookie(t, resp, ts.cookieName())
				}
				checkOKBody(t, path, resp)
			})
		}
	}

	t.Run("/ refusal is a page", func(t *testing.T) {
		resp := ts.get(t, timeout(t), "/")
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("status %d, Content-Type %q; want 401 text/html", resp.StatusCode, ct)
		}
		if !bytes.Contains(body, []byte("not valid")) {
			t.Errorf("refusal page %q does not explain itself", body)
		}
	})

	t.Run("cookie set by the link lets the page's requests in", func(t *testing.T) {
		ctx := timeout(t)
		resp := ts.get(t, ctx, "/?t="+token)
		resp.Body.Close()
		cookies := resp.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("got cookies %v, want one", cookies)
		}
		resp = ts.get(t, ctx, "/api/status", cookies[0])
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d with the server's own cookie, want 200", resp.StatusCode)
		}
	})
}

// TestAuthMalformedTokenNotRescuedByCookie: a ?t= that is there but cannot be
// parsed is still a wrong token, and an old cookie must not let it in.
func TestAuthMalformedTokenNotRescuedByCookie(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	good := ts.sessionCookie(t)
	cases := []struct{ name, query string }{
		{"bad escape", "?t=%zz"},
		{"semicolon", "?t=wrong;x=1"},
		{"token with a stray percent", "?t=" + token + "%"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.get(t, timeout(t), "/api/status"+tc.query, good)
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			switch resp.StatusCode {
			case http.StatusUnauthorized:
			case http.StatusOK:
				t.Fatalf("auth.go authorize: url.URL.Query drops the unparsable query %q, so the request "+
					"counts as having no ?t= and the old cookie lets it in; want 401 like any wrong ?t=", tc.query)
			default:
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
		})
	}
}

func checkTokenCookie(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie gives %d cookies (%q), want 1", len(cookies), resp.Header.Values("Set-Cookie"))
	}
	c := cookies[0]
	if c.Name != name || len(c.Value) != 32 || strings.Contains(c.Value, token) || !c.HttpOnly ||
		c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie %q, want %s=<32-digit session secret, not the token>; Path=/; HttpOnly; SameSite=Strict", c.String(), name)
	}
}

// checkOKBody checks a granted response is what path serves.
func checkOKBody(t *testing.T, path string, resp *http.Response) {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	switch path {
	case "/":
		body, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(body, indexHTML) || !strings.HasPrefix(ct, "text/html") {
			t.Errorf("page %q (%s), want index.html", body, ct)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Error("page without Content-Security-Policy")
		}
	case "/stream.mjpg":
		mediaBoundary(t, resp)
		br := bufio.NewReader(resp.Body)
		head := make([]byte, len(partHead))
		if _, err := io.ReadFull(br, head); err != nil || string(head) != partHead {
			t.Errorf("stream starts %q (%v), want %q", head, err, partHead)
		}
	case "/snapshot.jpg":
		body, _ := io.ReadAll(resp.Body)
		if ct != "image/jpeg" {
			t.Errorf("Content-Type %q, want image/jpeg", ct)
		}
		if _, err := jpeg.Decode(bytes.NewReader(body)); err != nil {
			t.Errorf("snapshot does not decode: %v", err)
		}
	case "/api/status":
		var st web.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || ct != "application/json" {
			t.Errorf("status (%s) does not decode: %v", ct, err)
		}
	}
}

func TestPublicFiles(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	cases := []struct {
		name, target string
		status       int
		body         []byte
		ctype        string
	}{
		{"viewer script", "/static/viewer.js", http.StatusOK, viewerJS, "text/javascript"},
		{"viewer script with a wrong token", "/static/viewer.js?t=nope", http.StatusOK, viewerJS, "text/javascript"},
		{"icon", "/static/icon.png", http.StatusOK, iconPNG, "image/png"},
		{"favicon", "/favicon.ico", http.StatusOK, iconPNG, "image/png"},
		{"missing static file", "/static/missing.js", http.StatusNotFound, nil, ""},
		{"unknown path", "/secret.jpg", http.StatusNotFound, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.get(t, timeout(t), tc.target)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); tc.ctype != "" && !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
				t.Errorf("public file sets a cookie: %q", c)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 8, 8, 0)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{}, fd)
	for _, target := range []string{"/stream.mjpg", "/stream.mjpg?t=" + token, "/snapshot.jpg?t=" + token, "/api/status?t=" + token} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			t.Run(method+" "+target, func(t *testing.T) {
				resp := ts.do(t, timeout(t), method, target)
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Fatalf("status %d, want 405", resp.StatusCode)
				}
				if bytes.Contains(body, []byte{0xFF, 0xD8}) {
					t.Errorf("405 carries JPEG bytes")
				}
			})
		}
	}
	if n := fd.Runs(); n != 0 {
		t.Errorf("refused methods ran the source %d times", n)
	}
}

func TestMJPEGParts(t *testing.T) {
	cases := []struct {
		name       string
		query      string
		withLength bool
	}{
		{"default layout", "", false},
		{"content length layout", "&cl=1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fd := newFeed()
			ts := startServer(t, web.Config{}, fd)
			const n = 5
			frames := make([]*media.Frame, n+1)
			for i := range frames {
				frames[i] = jpegFrame(t, 8*(i+1), 8, uint8(40*i))
			}
			ctx := timeout(t)
			if tc.withLength {
				// In this layout nothing, not even the response head, goes out
				// before the first frame.
				fd.Push(frames[0])
			}
			resp := ts.get(t, ctx, "/stream.mjpg?t="+token+tc.query)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			mr := multipart.NewReader(resp.Body, mediaBoundary(t, resp))
			for i := range n {
				if !tc.withLength {
					fd.Emit(t, frames[i])
				}
				p, err := mr.NextPart()
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				if tc.withLength {
					fd.Emit(t, frames[i+1]) // part i ends where part i+1 begins
				}
				body, err := io.ReadAll(p)
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				if ct := p.Header.Get("Content-Type"); ct != "image/jpeg" {
					t.Errorf("part %d: Content-Type %q", i, ct)
				}
				cl := p.Header.Get("Content-Length")
				switch {
				case tc.withLength && cl != strconv.Itoa(len(body)):
					t.Errorf("part %d: Content-Length %q, body is %d bytes", i, cl, len(body))
				case !tc.withLength && cl != "":
					t.Errorf("part %d: Content-Length %q in the default layout", i, cl)
				}
				img, err := jpeg.Decode(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("part %d does not decode: %v", i, err)
				}
				if w := img.Bounds().Dx(); w != frames[i].Width {
					t.Fatalf("part %d is %d px wide, want frame %d (%d px): out of order", i, w, i, frames[i].Width)
				}
				if !bytes.Equal(body, frames[i].Data) {
					t.Fatalf("part %d: bytes differ from the published frame", i)
				}
			}
		})
	}
}

// TestMJPEGNextHeaderRightAfterFrame reads the raw multipart body: each frame
// is followed at once by the next part's header, before the next frame exists.
func TestMJPEGNextHeaderRightAfterFrame(t *testing.T) {
	fd := newFeed()
	ts := startServer(t, web.Config{}, fd)
	resp := ts.get(t, timeout(t), "/stream.mjpg?t="+token)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	expect := func(what string, want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("%s: read %q, then %v", what, got, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	}
	expect("first part header, before any frame", []byte(partHead))
	for i := range 3 {
		f := jpegFrame(t, 8, 8, uint8(60*i))
		fd.Emit(t, f)
		expect(fmt.Sprintf("frame %d", i), f.Data)
		// No further frame is published until this header has arrived.
		expect(fmt.Sprintf("header after frame %d", i), []byte("\r\n"+partHead))
	}
}

func TestMJPEGKeepAlive(t *testing.T) {
	fd := newFeed()
	only := jpegFrame(t, 8, 8, 200)
	fd.First = repeat(only)
	ts := startServer(t, web.Config{KeepAlive: 100 * time.Millisecond}, fd)
	resp := ts.get(t, timeout(t), "/stream.mjpg?t="+token)
	defer resp.Body.Close()
	mr := multipart.NewReader(resp.Body, mediaBoundary(t, resp))
	for i := range 4 {
		_, body := readPart(t, mr)
		if !bytes.Equal(body, only.Data) {
			t.Fatalf("part %d is not the source's only frame", i)
		}
	}
	if st := ts.b.Stats(); st.Frames != 1 {
		t.Errorf("the hub published %d frames, want 1: the extra parts are re-sends", st.Frames)
	}
}

// TestMJPEGHead: HEAD /stream.mjpg gets the stream's headers, and since the
// response says Connection: close and has no body, the server then hangs up
// and the request stops counting as a viewer.
func TestMJPEGHead(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 8, 8, 0)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{KeepAlive: 20 * time.Millisecond}, fd)
	c, err := net.Dial("tcp", ts.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(testenv.Patience)); err != nil {
		t.Fatal(err)
	}
	// A raw connection: unlike net/http's client, it does not hang up by itself.
	if _, err := fmt.Fprintf(c, "HEAD /stream.mjpg?t=%s HTTP/1.1\r\nHost: %s\r\n\r\n", token, ts.srv.Addr()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	mediaBoundary(t, resp)

	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The connection may stay open for the next request (keep-alive), but
	// nothing may follow the HEAD response and nobody may count as watching.
	n, err := br.Read(make([]byte, 1))
	if n != 0 || (err != io.EOF && !errors.Is(err, os.ErrDeadlineExceeded)) {
		t.Fatalf("after the HEAD response: read %d bytes, %v; want none", n, err)
	}
	if st := ts.srv.Status(); st.Viewers != 0 || st.Capturing {
		t.Fatalf("after HEAD: viewers=%d capturing=%v; want 0, false", st.Viewers, st.Capturing)
	}
	testenv.Eventually(t, "viewer gone after HEAD", func() bool { return ts.b.Stats().Subscribers == 0 })
}

// getStatus fetches /api/status with the token and query, and returns it
// both decoded and as a map, to tell absent fields from empty ones.
func getStatus(t *testing.T, ts *testServer, query string) (web.Status, map[string]any) {
	t.Helper()
	resp := ts.get(t, timeout(t), "/api/status?t="+token+query)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var st web.Status
	var m map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return st, m
}

func TestStatus(t *testing.T) {
	t.Run("sharing, viewers, you, paused", func(t *testing.T) {
		fd := newFeed()
		f := jpegFrame(t, 64, 48, 90)
		fd.First = repeat(f)
		ts := startServer(t, web.Config{}, fd)
		ts.srv.SetMeta(web.Meta{Monitor: "HDMI-1", Encoder: "test", Version: "9.9.9 (commit abc)"})

		st, m := getStatus(t, ts, "")
		if m["version"] != "9.9.9 (commit abc)" {
			t.Errorf("version = %v, want the build's", m["version"])
		}
		if st.State != "sharing" || st.Viewers != 0 || st.Capturing || st.BytesSent != 0 {
			t.Errorf("before any viewer: %+v", st)
		}
		for _, k := range []string{"state", "monitor", "encoder", "capturing", "width", "height", "fps", "viewers",
			"frames", "frames_dropped", "bytes_sent", "grab_ms", "encode_ms", "frame_age_ms", "uptime_s"} {
			if _, ok := m[k]; !ok {
				t.Errorf("field %q missing from %v", k, m)
			}
		}

		resp := ts.get(t, timeout(t), "/stream.mjpg?t="+token+"&v=abc123")
		defer resp.Body.Close()
		mr := multipart.NewReader(resp.Body, mediaBoundary(t, resp))
		readPart(t, mr)

		st, m = getStatus(t, ts, "&v=abc123")
		if st.State != "sharing" || !st.Capturing || st.Viewers != 1 || st.Frames != 1 {
			t.Errorf("while streaming: state %q capturing %v viewers %d frames %d; want sharing, true, 1, 1",
				st.State, st.Capturing, st.Viewers, st.Frames)
		}
		if st.BytesSent < uint64(len(f.Data)) {
			t.Errorf("bytes_sent = %d, want at least the frame's %d", st.BytesSent, len(f.Data))
		}
		if st.Width != 64 || st.Height != 48 || st.GrabMS != 2 || st.EncodeMS != 3 {
			t.Errorf("frame fields: %dx%d grab %v encode %v; want 64x48, 2, 3", st.Width, st.Height, st.GrabMS, st.EncodeMS)
		}
		if st.Monitor != "HDMI-1" || st.Encoder != "test" {
			t.Errorf("meta: %q %q", st.Monitor, st.Encoder)
		}
		if _, ok := m["error"]; ok {
			t.Errorf("error field present without an error: %v", m["error"])
		}
		if st.You == nil || st.You.ID != "abc123" || st.You.Addr == "" || st.You.UserAgent == "" {
			t.Fatalf("you = %+v, want the stream with v=abc123", st.You)
		}
		testenv.Eventually(t, "you.frames counts the sent frame", func() bool {
			st, _ := getStatus(t, ts, "&v=abc123")
			return st.You != nil && st.You.Frames == 1 && st.You.Bytes == uint64(len(f.Data))
		})

		for _, q := range []string{"", "&v=other", "&v=ABC123", "&v=abc-123", "&v=" + strings.Repeat("a", 33)} {
			if _, m := getStatus(t, ts, q); m["you"] != nil {
				t.Errorf("query %q: you = %v, want absent", q, m["you"])
			}
		}

		ts.b.SetPaused(true)
		if st, _ := getStatus(t, ts, ""); st.State != "paused" || st.Capturing {
			t.Errorf("paused: state %q capturing %v", st.State, st.Capturing)
		}
		ts.b.SetPaused(false)
		if st, _ := getStatus(t, ts, ""); st.State != "sharing" {
			t.Errorf("resumed: state %q", st.State)
		}
	})

	t.Run("error", func(t *testing.T) {
		ts := startServer(t, web.Config{}, newFeed())
		ts.b.SetSource(fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error { return errBoom }))
		subscribe(t, ts.b, "v")
		testenv.Eventually(t, "state error", func() bool {
			st, _ := getStatus(t, ts, "")
			return st.State == "error" && st.Error == "boom"
		})
	})
}

func TestSnapshotEndpoint(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 24, 16, 30)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{}, fd)

	resp := ts.get(t, timeout(t), "/snapshot.jpg?t="+token)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if !bytes.Equal(body, f.Data) || resp.Header.Get("Content-Length") != strconv.Itoa(len(f.Data)) {
		t.Errorf("snapshot body %d bytes, Content-Length %q; want the frame's %d", len(body), resp.Header.Get("Content-Length"), len(f.Data))
	}
	if st, _ := getStatus(t, ts, ""); st.BytesSent != uint64(len(f.Data)) {
		t.Errorf("bytes_sent = %d after one snapshot, want %d", st.BytesSent, len(f.Data))
	}

	ts.b.SetPaused(true)
	resp = ts.get(t, timeout(t), "/snapshot.jpg?t="+token)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("paused: status %d, want 503", resp.StatusCode)
	}
	if bytes.Contains(body, []byte{0xFF, 0xD8}) || strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		t.Errorf("paused snapshot carries an image")
	}
}

func TestServerCloseEndsStreams(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 8, 8, 10)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{}, fd)
	resp := ts.get(t, timeout(t), "/stream.mjpg?t="+token)
	defer resp.Body.Close()
	readPart(t, multipart.NewReader(resp.Body, mediaBoundary(t, resp)))

	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		readDone <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return within 2 s")
	}
	select {
	case <-readDone:
	case <-time.After(testenv.Patience):
		t.Fatal("client's body read did not end after Close")
	}
	if n := ts.b.Stats().Subscribers; n != 0 {
		t.Errorf("Viewers = %d after Close, want 0", n)
	}
	if _, err := ts.client.Get(ts.base + "/api/status?t=" + token); err == nil {
		t.Error("server still answers after Close")
	}
	if err := ts.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	resp.Body.Close()
	ts.b.Close()
	ts.tr.CloseIdleConnections()
	goleak.VerifyNone(t)
}

func TestVideoHubCloseEndsStreams(t *testing.T) {
	fd := newFeed()
	f := jpegFrame(t, 8, 8, 10)
	fd.First = repeat(f)
	ts := startServer(t, web.Config{}, fd)
	resp := ts.get(t, timeout(t), "/stream.mjpg?t="+token)
	defer resp.Body.Close()
	readPart(t, multipart.NewReader(resp.Body, mediaBoundary(t, resp)))

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	ts.b.Close()
	select {
	case <-readDone:
	case <-time.After(testenv.Patience):
		t.Fatal("stream did not end when the video hub closed")
	}

	resp2 := ts.get(t, timeout(t), "/stream.mjpg?t="+token)
	defer resp2.Body.Close()
	body, _ := io.ReadAll(resp2.Body)
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("new stream after the video hub closed: status %d, want 503", resp2.StatusCode)
	}
	if bytes.Contains(body, []byte{0xFF, 0xD8}) || strings.HasPrefix(resp2.Header.Get("Content-Type"), "multipart/") {
		t.Errorf("503 carries a stream: %q", body)
	}
}

func TestBusyPortMovesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := ln.Addr().(*net.TCPAddr).Port

	b := newVideoHub(t, newFeed())
	srv, err := web.New(web.Config{Listen: fmt.Sprintf("127.0.0.1:%d", p), Token: token, Logger: quiet, Video: b})
	if err != nil {
		t.Fatalf("New on busy port %d: %v", p, err)
	}
	defer srv.Close()
	if got := srv.Port(); got <= p || got > p+20 {
		t.Fatalf("Port() = %d, want just above the busy %d", got, p)
	}
	if !srv.Addr().IP.IsLoopback() {
		t.Errorf("Addr() = %v, want loopback", srv.Addr())
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("http://127.0.0.1:%d/api/status?t=%s", srv.Port(), token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d on the new port", resp.StatusCode)
	}
	checkTokenCookie(t, resp, "deskcast_"+strconv.Itoa(srv.Port()))
}

func TestNewErrors(t *testing.T) {
	cases := []struct{ name, listen, token string }{
		{"short token", "127.0.0.1:0", "short"},
		{"token needing escapes", "127.0.0.1:0", "0123456789abcdef/0123"},
		{"no port", "127.0.0.1", token},
		{"port not a number", "127.0.0.1:http-alt", token},
		{"port too big", "127.0.0.1:70000", token},
		{"address not on this host", "192.0.2.1:0", token},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newVideoHub(t, newFeed())
			srv, err := web.New(web.Config{Listen: tc.listen, Token: tc.token, Logger: quiet, Video: b})
			if err == nil {
				srv.Close()
				t.Fatalf("New(%q, %q) succeeded, want an error", tc.listen, tc.token)
			}
		})
	}
	t.Run("no video hub", func(t *testing.T) {
		if srv, err := web.New(web.Config{Listen: "127.0.0.1:0", Token: token, Logger: quiet}); err == nil {
			srv.Close()
			t.Fatal("New without a video hub succeeded, want an error")
		}
	})
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestNewToken(t *testing.T) {
	a, b := web.NewToken(), web.NewToken()
	for _, tok := range []string{a, b} {
		if !hex32.MatchString(tok) {
			t.Errorf("NewToken() = %q, want 32 lowercase hex digits", tok)
		}
		if err := web.ValidToken(tok); err != nil {
			t.Errorf("ValidToken(NewToken()) = %v", err)
		}
	}
	if a == b {
		t.Errorf("two NewToken calls both gave %q", a)
	}
}

func TestServerRandomToken(t *testing.T) {
	b := newVideoHub(t, newFeed())
	srv, err := web.New(web.Config{Listen: "127.0.0.1:0", Logger: quiet, Video: b})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !hex32.MatchString(srv.Token()) {
		t.Errorf("Token() = %q, want a fresh NewToken", srv.Token())
	}
}

func TestValidToken(t *testing.T) {
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"empty", "", false},
		{"15 characters", strings.Repeat("a", 15), false},
		{"16 characters", strings.Repeat("a", 16), true},
		{"128 characters", strings.Repeat("Z", 128), true},
		{"129 characters", strings.Repeat("Z", 129), false},
		{"letters digits dash underscore", "Abc-123_xyz-789_QRS", true},
		{"new token", web.NewToken(), true},
		{"space", "0123456789 abcdef", false},
		{"slash", "0123456789/abcdef", false},
		{"plus", "0123456789+abcdef", false},
		{"percent", "0123456789%20abcdef", false},
		{"ampersand", "0123456789&abcdef", false},
		{"equals", "0123456789=abcdef", false},
		{"dot", "0123456789.abcdef", false},
		{"tilde", "0123456789~abcdef", false},
		{"non-ASCII letter", "0123456789éabcdef", false},
		{"NUL", "0123456789\x00abcdef", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := web.ValidToken(tc.token)
			if (err == nil) != tc.ok {
				t.Errorf("ValidToken(%q) = %v, want ok=%v", tc.token, err, tc.ok)
			}
		})
	}
}

func TestViewerURLs(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	urls := ts.srv.ViewerURLs()
	if len(urls) != 1 {
		t.Fatalf("ViewerURLs() = %v, want one loopback URL", urls)
	}
	u := urls[0]
	want := fmt.Sprintf("http://127.0.0.1:%d/?t=%s", ts.srv.Port(), token)
	if u.Interface != "loopback" || !u.IP.Equal(net.IPv4(127, 0, 0, 1)) || u.URL != want {
		t.Errorf("ViewerURLs()[0] = %+v, want loopback %s", u, want)
	}
	resp, err := ts.client.Get(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: status %d", u.URL, resp.StatusCode)
	}
}
