package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/web"
)

func TestParseControl(t *testing.T) {
	cases := []struct {
		msg  string
		want web.ControlEvent
		ok   bool
	}{
		{`{"t":"move","x":0.5,"y":0.25}`, web.ControlEvent{Type: "move", X: 0.5, Y: 0.25}, true},
		{`{"t":"down","b":2,"x":0,"y":1}`, web.ControlEvent{Type: "down", Button: 2, Y: 1}, true},
		{`{"t":"up","b":0,"x":1,"y":0}`, web.ControlEvent{Type: "up", X: 1}, true},
		{`{"t":"wheel","dy":-3,"x":0.1,"y":0.1}`, web.ControlEvent{Type: "wheel", DY: -3, X: 0.1, Y: 0.1}, true},
		{`{"t":"key","k":"Enter","down":true}`, web.ControlEvent{Type: "key", Key: "Enter", Down: true}, true},
		{`{"t":"key","k":" "}`, web.ControlEvent{Type: "key", Key: " "}, true},
		{`{"t":"text","s":"héllo wörld"}`, web.ControlEvent{Type: "text", Text: "héllo wörld"}, true},
		{`{"t":"text","s":"👨\u200d👩\u200d👧 ❤\ufe0f"}`, web.ControlEvent{Type: "text", Text: "👨\u200d👩\u200d👧 ❤\ufe0f"}, true},
		{`{"t":"text","s":"a\u200bb"}`, web.ControlEvent{}, false}, // a zero-width space is not for typing
		{`{"t":"move","x":1.5,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"move","x":-0.01,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"move","x":"NaN","y":0}`, web.ControlEvent{}, false},
		{`{"t":"move","x":1e400,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"down","b":3,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"down","b":-1,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"wheel","dy":11,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"wheel","x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"key","k":"F13"}`, web.ControlEvent{}, false},
		{`{"t":"key","k":"enter"}`, web.ControlEvent{}, false},
		{`{"t":"text","s":""}`, web.ControlEvent{}, false},
		{`{"t":"text","s":"a\u0007b"}`, web.ControlEvent{}, false},
		{`{"t":"text","s":"` + strings.Repeat("x", 65) + `"}`, web.ControlEvent{}, false},
		{`{"t":"exec","s":"rm -rf /"}`, web.ControlEvent{}, false},
		{`{"t":"move","x":0,"y":0,"evil":1}`, web.ControlEvent{}, false},
		{`{"t":"move","x":0,"y":0}{"t":"move"}`, web.ControlEvent{}, false},
		{`{"t":"move","b":7,"x":0,"y":0}`, web.ControlEvent{}, false}, // found by FuzzParseControl
		{`{"t":"move","dy":100,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"wheel","b":9,"dy":1,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"down","b":0,"dx":3,"x":0,"y":0}`, web.ControlEvent{}, false},
		{`{"t":"key","k":"Enter","s":"rm -rf /"}`, web.ControlEvent{}, false},
		{`{"t":"text","s":"a","k":"Enter","down":true}`, web.ControlEvent{}, false},
		{`{"t":"key","k":"Tab","x":0.5}`, web.ControlEvent{}, false},
		{`[1,2]`, web.ControlEvent{}, false},
		{`{"t":"move","x":0,"y":0`, web.ControlEvent{}, false},
		{``, web.ControlEvent{}, false},
		{"\xff\xfe", web.ControlEvent{}, false},
		{`{"t":"text","s":"` + strings.Repeat("é", 300) + `"}`, web.ControlEvent{}, false},
	}
	for _, tc := range cases {
		got, err := web.ParseControl([]byte(tc.msg))
		if (err == nil) != tc.ok {
			t.Errorf("ParseControl(%.60q): err %v, want ok=%v", tc.msg, err, tc.ok)
			continue
		}
		if tc.ok && got != tc.want {
			t.Errorf("ParseControl(%.60q) = %+v, want %+v", tc.msg, got, tc.want)
		}
	}
}

// recorder is the desktop as the server sees it: it keeps what reaches it.
type recorder struct {
	mu       sync.Mutex
	events   []string
	released int
}

func (r *recorder) add(s string) error {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
	return nil
}
func (r *recorder) Move(x, y float64) error       { return r.add(fmt.Sprintf("move %.2f,%.2f", x, y)) }
func (r *recorder) Button(b int, down bool) error { return r.add(fmt.Sprintf("button %d %v", b, down)) }
func (r *recorder) Scroll(dx, dy int) error       { return r.add(fmt.Sprintf("scroll %d,%d", dx, dy)) }
func (r *recorder) Key(k string, down bool) error { return r.add(fmt.Sprintf("key %q %v", k, down)) }
func (r *recorder) Text(s string) error           { return r.add("text " + s) }
func (r *recorder) ReleaseAll() error             { r.mu.Lock(); r.released++; r.mu.Unlock(); return nil }
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

type controlConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialControl(t *testing.T, ts *testServer, cookie *http.Cookie) (*controlConn, error) {
	t.Helper()
	h := http.Header{}
	if cookie != nil {
		h.Set("Cookie", cookie.String())
	}
	c, _, err := websocket.Dial(timeout(t), "ws://"+ts.srv.Addr().String()+"/ws/control",
		&websocket.DialOptions{HTTPClient: ts.client, HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &controlConn{t, c}, nil
}

// granted reads the server's next control message.
func (cc *controlConn) granted() bool {
	cc.t.Helper()
	_, data, err := cc.c.Read(timeout(cc.t))
	if err != nil {
		cc.t.Fatalf("reading control status: %v", err)
	}
	var m struct {
		Type    string
		Granted bool
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Type != "control" {
		cc.t.Fatalf("control message %q (%v)", data, err)
	}
	return m.Granted
}

func (cc *controlConn) send(msgs ...string) {
	cc.t.Helper()
	for _, m := range msgs {
		if err := cc.c.Write(timeout(cc.t), websocket.MessageText, []byte(m)); err != nil {
			cc.t.Fatal(err)
		}
	}
}

// settle waits until the server has had time to handle what was sent.
func settle() { time.Sleep(200 * time.Millisecond) }

var click = []string{`{"t":"down","b":0,"x":0.5,"y":0.5}`, `{"t":"up","b":0,"x":0.5,"y":0.5}`}

func TestControlGrantAndRevoke(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	rec := &recorder{}
	if err := ts.srv.SetControl(access.ControlGrant, rec); err != nil {
		t.Fatal(err)
	}
	alice := ts.sessionCookie(t)
	cc, err := dialControl(t, ts, alice)
	if err != nil {
		t.Fatal(err)
	}
	if cc.granted() {
		t.Fatal("granted before the presenter said so")
	}
	cc.send(click...)
	settle()
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("input without a grant reached the desktop: %q", got)
	}

	vs, _ := ts.srv.Viewers()
	if len(vs) != 1 {
		t.Fatalf("viewers %+v", vs)
	}
	if err := ts.srv.Grant(vs[0].ID); err != nil {
		t.Fatal(err)
	}
	if !cc.granted() {
		t.Fatal("the page was not told of the grant")
	}
	cc.send(click...)
	cc.send(`{"t":"wheel","dy":2,"x":0.25,"y":0.75}`, `{"t":"key","k":"Enter","down":true}`, `{"t":"key","k":"Enter"}`,
		`{"t":"text","s":"hi"}`, `not json`, `{"t":"key","k":"F99"}`, `{"t":"move","x":0.1,"y":0.9}`)
	settle()
	want := []string{"move 0.50,0.50", "button 0 true", "move 0.50,0.50", "button 0 false", "move 0.25,0.75", "scroll 0,2",
		`key "Enter" true`, `key "Enter" false`, "text hi", "move 0.10,0.90"}
	if got := rec.take(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("desktop got\n%q\nwant\n%q", got, want)
	}
	if st := ts.srv.Status().Control; st.Malformed != 2 || st.Controller != vs[0].ID || st.Refused != 2 {
		t.Errorf("control status %+v: want 2 malformed, 2 refused, controller %s", st, vs[0].ID)
	}

	// Another viewer has no say, even while Alice has control.
	bob, err := dialControl(t, ts, ts.sessionCookie(t))
	if err != nil {
		t.Fatal(err)
	}
	if bob.granted() {
		t.Fatal("a second viewer is granted too")
	}
	bob.send(click...)
	settle()
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("another viewer's input reached the desktop: %q", got)
	}

	ts.srv.Revoke(vs[0].ID)
	if cc.granted() {
		t.Fatal("the page was not told of the revoke")
	}
	cc.send(click...)
	settle()
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("input after revoke reached the desktop: %q", got)
	}
	if rec.released == 0 {
		t.Error("revoke did not release held buttons and keys")
	}

	// Control off: a grant is refused and nothing gets through.
	if err := ts.srv.SetControl(access.ControlOff, nil); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Grant(vs[0].ID); err == nil {
		t.Error("granted control while it is off")
	}
}

func TestControlAllAndRateLimit(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	rec := &recorder{}
	if err := ts.srv.SetControl(access.ControlAll, rec); err != nil {
		t.Fatal(err)
	}
	cc, err := dialControl(t, ts, ts.sessionCookie(t))
	if err != nil {
		t.Fatal(err)
	}
	if !cc.granted() {
		t.Fatal("with control for all, a viewer is not granted")
	}
	for range 1500 {
		cc.send(`{"t":"move","x":0.5,"y":0.5}`)
	}
	settle()
	got, st := len(rec.take()), ts.srv.Status().Control
	if got >= 1500 || st.Limited == 0 {
		t.Fatalf("1500 moves at once: %d reached the desktop, %d limited; want a limit", got, st.Limited)
	}
	t.Logf("1500 moves at once: %d injected, %d dropped by the rate limit", got, st.Limited)
}

func TestControlNeedsTheToken(t *testing.T) {
	ts := startServer(t, web.Config{}, newFeed())
	rec := &recorder{}
	if err := ts.srv.SetControl(access.ControlAll, rec); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*http.Cookie{
		"no cookie":    nil,
		"wrong cookie": {Name: ts.cookieName(), Value: strings.Repeat("0", 32)},
		"the token":    {Name: ts.cookieName(), Value: token},
	} {
		if _, err := dialControl(t, ts, c); err == nil {
			t.Errorf("%s: the control socket opened", name)
		}
	}
	// A disconnected viewer's socket ends, and it cannot come back.
	cookie := ts.sessionCookie(t)
	cc, err := dialControl(t, ts, cookie)
	if err != nil {
		t.Fatal(err)
	}
	cc.granted()
	vs, _ := ts.srv.Viewers()
	if err := ts.srv.Disconnect(vs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cc.c.Read(timeout(t)); err == nil {
		t.Error("the socket of a disconnected viewer stays open")
	}
	if _, err := dialControl(t, ts, cookie); err == nil {
		t.Error("a disconnected viewer opened the control socket again")
	}
	if got := rec.take(); len(got) != 0 {
		t.Errorf("desktop got %q", got)
	}
}
