package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

func TestParsePointerMode(t *testing.T) {
	cases := []struct {
		in   string
		want web.PointerMode
		ok   bool
	}{
		{"", web.PointerOn, true},
		{"on", web.PointerOn, true},
		{"off", web.PointerOff, true},
		{"highlight", web.PointerHighlight, true},
		{"ON", "", false},
		{"yes", "", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			m, err := web.ParsePointerMode(c.in)
			if (err == nil) != c.ok || m != c.want {
				t.Fatalf("ParsePointerMode(%q) = %q, %v", c.in, m, err)
			}
		})
	}
}

// pointerServer is a test server with a pointer hub fed by the returned feed
// and a second JPEG hub (the pointer drawn in) fed by pfd.
func pointerServer(t *testing.T, cfg web.Config, fd, pfd *feed) (*testServer, *testenv.Feed[*media.Pointer], *fanout.Hub[*media.Frame]) {
	t.Helper()
	pf := testenv.NewFeed[*media.Pointer]()
	ph := fanout.New(pf, fanout.Options[*media.Pointer]{Logger: quiet, Queue: web.PointerQueue, Replay: true, Prepare: web.PointerPrepare})
	t.Cleanup(ph.Close)
	vp := newVideoHub(t, pfd)
	cfg.Pointer, cfg.VideoPointer = ph, vp
	return startServer(t, cfg, fd), pf, vp
}

func dialPointer(t *testing.T, ctx context.Context, ts *testServer, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://"+ts.srv.Addr().String()+"/ws/pointer"+query,
		&websocket.DialOptions{HTTPClient: ts.client, CompressionMode: websocket.CompressionDisabled})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// readJSON reads one text message into a map.
func readJSON(t *testing.T, ctx context.Context, c *websocket.Conn) map[string]any {
	t.Helper()
	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("a %v message, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	return m
}

// expectShape reads a shape message and its PNG.
func expectShape(t *testing.T, ctx context.Context, c *websocket.Conn, s *media.PointerShape) {
	t.Helper()
	m := readJSON(t, ctx, c)
	if m["type"] != "shape" || m["shape"] != float64(s.Serial) || m["w"] != float64(s.W) || m["hx"] != float64(s.HotX) || m["hy"] != float64(s.HotY) ||
		m["aw"] != 1920.0 || m["ah"] != 1080.0 {
		t.Fatalf("shape message %v, want shape %d", m, s.Serial)
	}
	typ, png, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || !bytes.Equal(png, s.PNG) {
		t.Fatalf("the shape's PNG: %v %q %v", typ, png, err)
	}
}

func expectPos(t *testing.T, ctx context.Context, c *websocket.Conn, p *media.Pointer) {
	t.Helper()
	m := readJSON(t, ctx, c)
	if m["type"] != "pos" || m["x"] != p.X || m["y"] != p.Y || m["visible"] != p.Visible {
		t.Fatalf("position %v, want %+v", m, p)
	}
}

func TestPointerWebSocket(t *testing.T) {
	ts, pf, _ := pointerServer(t, web.Config{}, newFeed(), newFeed())
	ctx := timeout(t)
	arrow := &media.PointerShape{PNG: []byte("\x89PNG arrow"), W: 16, H: 24, HotX: 1, HotY: 2, Serial: 5}
	hand := &media.PointerShape{PNG: []byte("\x89PNG hand"), W: 20, H: 20, HotX: 6, HotY: 0, Serial: 6}
	first := &media.Pointer{X: 0.25, Y: 0.5, Visible: true, Shape: arrow, AreaW: 1920, AreaH: 1080}
	pf.First = func() *media.Pointer { return first }

	c, _, err := dialPointer(t, ctx, ts, "?t="+token)
	if err != nil {
		t.Fatal(err)
	}
	expectShape(t, ctx, c, arrow)
	expectPos(t, ctx, c, first)

	// Moves carry the same shape: only positions go out.
	moved := &media.Pointer{X: 0.75, Y: 0.125, Visible: true, Shape: arrow, AreaW: 1920, AreaH: 1080}
	pf.Emit(t, moved)
	expectPos(t, ctx, c, moved)
	hidden := &media.Pointer{X: 1.5, Y: 0.125, Shape: arrow, AreaW: 1920, AreaH: 1080}
	pf.Emit(t, hidden)
	expectPos(t, ctx, c, hidden)

	// A new shape goes out once, before its position.
	other := &media.Pointer{X: 0.5, Y: 0.5, Visible: true, Shape: hand, AreaW: 1920, AreaH: 1080}
	pf.Emit(t, other)
	expectShape(t, ctx, c, hand)
	expectPos(t, ctx, c, other)

	// A viewer that joins now gets the current shape and position at once.
	c2, _, err := dialPointer(t, ctx, ts, "?t="+token)
	if err != nil {
		t.Fatal(err)
	}
	expectShape(t, ctx, c2, hand)
	expectPos(t, ctx, c2, other)
}

func TestPointerWebSocketRefused(t *testing.T) {
	cases := []struct {
		name  string
		query string
		setup func(*web.Server)
		want  int
	}{
		{"no token", "", nil, http.StatusUnauthorized},
		{"wrong token", "?t=" + flipLast(token), nil, http.StatusUnauthorized},
		{"pointer off", "?t=" + token, func(s *web.Server) { s.SetPointerMode(web.PointerOff) }, http.StatusServiceUnavailable},
		{"audio only", "?t=" + token, func(s *web.Server) { s.SetMode(access.ModeAudio) }, http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, pf, _ := pointerServer(t, web.Config{}, newFeed(), newFeed())
			if c.setup != nil {
				c.setup(ts.srv)
			}
			conn, resp, err := dialPointer(t, timeout(t), ts, c.query)
			if err == nil {
				conn.CloseNow()
				t.Fatal("the socket opened")
			}
			if resp == nil || resp.StatusCode != c.want {
				t.Fatalf("status %v, want %d", resp, c.want)
			}
			if n := pf.Runs(); n != 0 {
				t.Fatalf("the pointer source ran %d times", n)
			}
		})
	}
}

// TestPointerMJPEGRoute: players get the frames with the pointer drawn in,
// the page (?pointer=0) the plain ones, and everybody the plain ones while
// the pointer is not shown.
func TestPointerMJPEGRoute(t *testing.T) {
	plain, drawn := jpegFrame(t, 24, 16, 30), jpegFrame(t, 24, 16, 200)
	cases := []struct {
		name  string
		path  string
		mode  web.PointerMode
		drawn bool
	}{
		{"stream", "/stream.mjpg?t=" + token, web.PointerOn, true},
		{"stream highlight", "/stream.mjpg?t=" + token, web.PointerHighlight, true},
		{"the page's stream", "/stream.mjpg?pointer=0&t=" + token, web.PointerOn, false},
		{"stream, pointer off", "/stream.mjpg?t=" + token, web.PointerOff, false},
		{"snapshot", "/snapshot.jpg?t=" + token, web.PointerOn, true},
		{"snapshot without", "/snapshot.jpg?pointer=0&t=" + token, web.PointerOn, false},
		{"snapshot, pointer off", "/snapshot.jpg?t=" + token, web.PointerOff, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fd, pfd := newFeed(), newFeed()
			fd.First, pfd.First = repeat(plain), repeat(drawn)
			ts, _, _ := pointerServer(t, web.Config{PointerMode: c.mode}, fd, pfd)
			resp := ts.get(t, timeout(t), c.path)
			defer resp.Body.Close()
			want := plain.Data
			if c.drawn {
				want = drawn.Data
			}
			got := make([]byte, len(want)+200)
			n, _ := io.ReadAtLeast(resp.Body, got, len(want)+50)
			if !bytes.Contains(got[:n], want) {
				t.Fatalf("%s did not serve the %s frame", c.path, map[bool]string{true: "drawn", false: "plain"}[c.drawn])
			}
			if st, _ := getStatus(t, ts, ""); st.Pointer != c.mode {
				t.Fatalf("status pointer %q, want %q", st.Pointer, c.mode)
			}
		})
	}
}

func TestPointerStatusWithoutHub(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	st, raw := getStatus(t, ts, "")
	if st.Pointer != web.PointerOff || !strings.Contains(func() string { b, _ := json.Marshal(raw); return string(b) }(), `"pointer":"off"`) {
		t.Fatalf("pointer %q without a pointer hub, want off", st.Pointer)
	}
}
