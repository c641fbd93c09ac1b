package portal_test

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/capture/portal"
	"github.com/deskcast/deskcast/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	desktopPath = dbus.ObjectPath("/org/freedesktop/portal/desktop")
	screenCast  = "org.freedesktop.portal.ScreenCast"
	requestIf   = "org.freedesktop.portal.Request"
	sessionIf   = "org.freedesktop.portal.Session"
)

// never, as a dialog time, is a dialog nobody answers.
const never = -1

// fakeConfig is how the fake portal answers.
type fakeConfig struct {
	version uint32 // the interface's version property
	cursors uint32 // AvailableCursorModes

	createCode, selectCode, startCode uint32 // the Response codes: 0 ok, 1 cancelled, 2 failed
	createErr, selectErr              bool   // the method call itself fails with a D-Bus error
	createHang                        bool   // CreateSession never returns (until the test ends)
	noHandle                          bool   // CreateSession's response has no session_handle
	closeInStart                      bool   // Start: the desktop ends the session instead of answering

	// knownToken is the restore token the portal still has a permission for:
	// Start answers at once. Without it (none, or one the portal forgot) Start
	// answers after dialog, the time the user takes in the dialog (never: not
	// at all), with newToken.
	knownToken, newToken string
	dialog               time.Duration
	// streams are Start's streams; one of size zero comes without its
	// position and size, as a portal that does not know them sends it.
	streams []portal.Stream
}

// defaults is a GNOME-like portal: version 5, every cursor mode, one 1920x1080 monitor.
func defaults() fakeConfig {
	return fakeConfig{version: 5, cursors: portal.CursorHidden | portal.CursorEmbedded | portal.CursorMetadata,
		newToken: "token-new", streams: []portal.Stream{{NodeID: 42, Size: image.Pt(1920, 1080)}}}
}

// fakePortal is xdg-desktop-portal's ScreenCast interface as the client sees
// it, on the test's private bus: the methods and properties at
// /org/freedesktop/portal/desktop, Request objects answering with their
// Response signal on the path the caller computed from its unique name and
// handle_token, and Session objects with Close and the Closed signal.
type fakePortal struct {
	t    *testing.T
	cfg  fakeConfig
	conn *dbus.Conn
	wg   sync.WaitGroup // the answers still to come

	mu        sync.Mutex
	stop      chan struct{}           // closed when the test ends: pending answers give up
	selected  map[string]dbus.Variant // SelectSources' options
	session   dbus.ObjectPath
	startReq  dbus.ObjectPath
	pending   map[dbus.ObjectPath]chan struct{} // closed by Request.Close
	reqClosed []dbus.ObjectPath                 // Request.Close calls
	sesClosed []dbus.ObjectPath                 // Session.Close calls
	peer      *os.File                          // our end of the PipeWire socket pair
	sent      []int                             // the ends sent, closed when the test ends
}

// startPortal starts a private session bus with the fake portal on it.
func startPortal(t *testing.T, cfg fakeConfig) *fakePortal {
	t.Helper()
	testenv.SessionBus(t)
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePortal{t: t, cfg: cfg, conn: conn, stop: make(chan struct{}), pending: map[dbus.ObjectPath]chan struct{}{}}
	t.Cleanup(func() {
		f.mu.Lock()
		close(f.stop)
		f.mu.Unlock()
		f.wg.Wait()
		_ = conn.Close()
		if f.peer != nil {
			_ = f.peer.Close()
		}
		for _, fd := range f.sent {
			_ = syscall.Close(fd)
		}
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(conn.ExportMethodTable(map[string]any{
		"CreateSession":      f.createSession,
		"SelectSources":      f.selectSources,
		"Start":              f.start,
		"OpenPipeWireRemote": f.openPipeWireRemote,
	}, desktopPath, screenCast))
	must(conn.ExportSubtreeMethodTable(map[string]any{"Close": f.closeRequest}, desktopPath+"/request", requestIf))
	must(conn.ExportSubtreeMethodTable(map[string]any{"Close": f.closeSession}, desktopPath+"/session", sessionIf))
	_, err = prop.Export(conn, desktopPath, prop.Map{screenCast: {
		"version":              {Value: cfg.version, Emit: prop.EmitFalse},
		"AvailableCursorModes": {Value: cfg.cursors, Emit: prop.EmitFalse},
		"AvailableSourceTypes": {Value: uint32(portal.SourceMonitor | portal.SourceWindow), Emit: prop.EmitFalse},
	}})
	must(err)
	r, err := conn.RequestName("org.freedesktop.portal.Desktop", dbus.NameFlagDoNotQueue)
	must(err)
	if r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: reply %d", r)
	}
	return f
}

// handlePath is the portal's object path for a caller's request or session token.
func handlePath(kind string, sender dbus.Sender, token string) dbus.ObjectPath {
	s := strings.ReplaceAll(strings.TrimPrefix(string(sender), ":"), ".", "_")
	return desktopPath + dbus.ObjectPath("/"+kind+"/"+s+"/"+token)
}

// request makes the Request object for a call with these options.
func (f *fakePortal) request(sender dbus.Sender, opts map[string]dbus.Variant) (dbus.ObjectPath, chan struct{}) {
	tok, _ := opts["handle_token"].Value().(string)
	path := handlePath("request", sender, tok)
	f.mu.Lock()
	defer f.mu.Unlock()
	closed := make(chan struct{})
	f.pending[path] = closed
	return path, closed
}

// after runs fn after delay (never: not at all), as the portal answers
// once its method has returned, unless cancel closes or the test ends first.
func (f *fakePortal) after(delay time.Duration, cancel <-chan struct{}, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.stop:
		return
	default:
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		var at <-chan time.Time
		if delay != never {
			at = time.After(delay)
		}
		select {
		case <-at:
			fn()
		case <-cancel:
		case <-f.stop:
		}
	}()
}

// respond emits the request's Response after delay, unless the request is
// closed first. An answer without delay goes out before the method returns:
// only a client that subscribed to the path it computed, before calling,
// gets it (the bus routes a signal by the match rules it has then).
func (f *fakePortal) respond(path dbus.ObjectPath, closed <-chan struct{}, delay time.Duration, code uint32, results map[string]dbus.Variant) {
	if results == nil {
		results = map[string]dbus.Variant{}
	}
	emit := func() {
		if err := f.conn.Emit(path, requestIf+".Response", code, results); err != nil {
			f.t.Errorf("emitting the response: %v", err)
		}
	}
	if delay == 0 {
		emit()
		return
	}
	f.after(delay, closed, emit)
}

var errFailed = dbus.NewError("org.freedesktop.portal.Error.Failed", []any{"the fake fails as told"})

func (f *fakePortal) createSession(sender dbus.Sender, opts map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	if f.cfg.createHang {
		<-f.stop
		return "", errFailed
	}
	if f.cfg.createErr {
		return "", errFailed
	}
	path, closed := f.request(sender, opts)
	res := map[string]dbus.Variant{}
	if !f.cfg.noHandle {
		tok, _ := opts["session_handle_token"].Value().(string)
		h := handlePath("session", sender, tok)
		f.mu.Lock()
		f.session = h
		f.mu.Unlock()
		// The portal's answer carries the handle as a string (an "o" before 1.0).
		res["session_handle"] = dbus.MakeVariant(string(h))
	}
	f.respond(path, closed, 0, f.cfg.createCode, res)
	return path, nil
}

func (f *fakePortal) checkSession(h dbus.ObjectPath) *dbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h != f.session {
		return dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"unknown session " + string(h)})
	}
	return nil
}

func (f *fakePortal) selectSources(sender dbus.Sender, h dbus.ObjectPath, opts map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	if err := f.checkSession(h); err != nil {
		return "", err
	}
	if f.cfg.selectErr {
		return "", errFailed
	}
	f.mu.Lock()
	f.selected = opts
	f.mu.Unlock()
	path, closed := f.request(sender, opts)
	f.respond(path, closed, 0, f.cfg.selectCode, nil)
	return path, nil
}

func (f *fakePortal) start(sender dbus.Sender, h dbus.ObjectPath, parent string, opts map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	if err := f.checkSession(h); err != nil {
		return "", err
	}
	path, closed := f.request(sender, opts)
	f.mu.Lock()
	f.startReq = path
	restore, _ := f.selected["restore_token"].Value().(string)
	f.mu.Unlock()
	if f.cfg.closeInStart {
		// The desktop ends the session while its dialog is up.
		f.after(100*time.Millisecond, nil, f.emitClosed)
		return path, nil
	}
	delay := f.cfg.dialog
	if restore != "" && restore == f.cfg.knownToken {
		delay = 0 // the permission is still there: no dialog
	}
	type stream struct {
		Node  uint32
		Props map[string]dbus.Variant
	}
	streams := []stream{}
	for _, s := range f.cfg.streams {
		props := map[string]dbus.Variant{"source_type": dbus.MakeVariant(uint32(portal.SourceMonitor))}
		if s.Size != (image.Point{}) { // (ii) structs
			props["position"] = dbus.MakeVariant(struct{ X, Y int32 }{int32(s.Position.X), int32(s.Position.Y)})
			props["size"] = dbus.MakeVariant(struct{ W, H int32 }{int32(s.Size.X), int32(s.Size.Y)})
		}
		streams = append(streams, stream{s.NodeID, props})
	}
	res := map[string]dbus.Variant{"streams": dbus.MakeVariant(streams)}
	if f.cfg.newToken != "" {
		res["restore_token"] = dbus.MakeVariant(f.cfg.newToken)
	}
	f.respond(path, closed, delay, f.cfg.startCode, res)
	return path, nil
}

func (f *fakePortal) openPipeWireRemote(h dbus.ObjectPath, _ map[string]dbus.Variant) (dbus.UnixFD, *dbus.Error) {
	if err := f.checkSession(h); err != nil {
		return -1, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, dbus.MakeFailedError(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.peer != nil {
		_ = f.peer.Close()
	}
	f.peer = os.NewFile(uintptr(fds[1]), "pipewire-peer")
	// The message carries a duplicate; ours goes when the test ends, well
	// after the reply is on its way.
	f.sent = append(f.sent, fds[0])
	return dbus.UnixFD(fds[0]), nil
}

func (f *fakePortal) closeRequest(msg dbus.Message) *dbus.Error {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqClosed = append(f.reqClosed, path)
	if c, ok := f.pending[path]; ok {
		close(c)
		delete(f.pending, path)
	}
	return nil
}

func (f *fakePortal) closeSession(msg dbus.Message) *dbus.Error {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sesClosed = append(f.sesClosed, path)
	return nil
}

// emitClosed ends the session from the desktop's side.
func (f *fakePortal) emitClosed() {
	f.mu.Lock()
	h := f.session
	f.mu.Unlock()
	if err := f.conn.Emit(h, sessionIf+".Closed", map[string]dbus.Variant{}); err != nil {
		f.t.Errorf("emitting Closed: %v", err)
	}
}

// selectedOptions is SelectSources' options as plain values, without the
// handle token (which the request's path already checks).
func (f *fakePortal) selectedOptions() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]any{}
	for k, v := range f.selected {
		if k != "handle_token" {
			m[k] = v.Value()
		}
	}
	return m
}

func (f *fakePortal) sessionPath() dbus.ObjectPath {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.session
}

func (f *fakePortal) closedSessions() []dbus.ObjectPath {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dbus.ObjectPath(nil), f.sesClosed...)
}

// open opens a session against the bus with a bound of its own, and counts
// Waiting's calls.
func open(t *testing.T, opt portal.Options) (*portal.Session, *atomic.Int32, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waits := new(atomic.Int32)
	opt.Waiting = func() { waits.Add(1) }
	s, err := portal.Open(ctx, opt)
	return s, waits, err
}

func TestOpen(t *testing.T) {
	const hidden, embedded, metadata = portal.CursorHidden, portal.CursorEmbedded, portal.CursorMetadata
	for _, tc := range []struct {
		name string
		cfg  func(*fakeConfig)
		opt  portal.Options
		// What SelectSources is sent besides types=1 and multiple=false:
		// persist_mode 2, the restore token, and the cursor mode (also the
		// mode Open reports; 0 means none is sent).
		persist bool
		sent    string
		cursor  uint32
		token   string // the restore token Open returns
		waits   int32  // Waiting's calls
	}{
		{"first share: the dialog, a new token, the cursor embedded", func(c *fakeConfig) { c.dialog = time.Second },
			portal.Options{Cursor: embedded}, true, "", embedded, "token-new", 1},
		{"restored: the token passed through, no dialog, the next token",
			func(c *fakeConfig) { c.dialog, c.knownToken, c.newToken = time.Second, "token-known", "token-next" },
			portal.Options{RestoreToken: "token-known", Cursor: embedded}, true, "token-known", embedded, "token-next", 0},
		{"wanted cursor not offered: metadata", func(c *fakeConfig) { c.cursors = hidden | metadata },
			portal.Options{Cursor: embedded}, true, "", metadata, "token-new", 0},
		{"neither wanted nor metadata offered: embedded", func(c *fakeConfig) { c.cursors = hidden | embedded },
			portal.Options{Cursor: metadata}, true, "", embedded, "token-new", 0},
		{"only hidden offered: left to the portal", func(c *fakeConfig) { c.cursors = hidden },
			portal.Options{Cursor: embedded}, true, "", 0, "token-new", 0},
		{"version 3: no persistence, two monitors, one without its layout", func(c *fakeConfig) {
			c.version, c.newToken = 3, ""
			c.streams = []portal.Stream{{NodeID: 51, Position: image.Pt(1920, -120), Size: image.Pt(2560, 1440)}, {NodeID: 52}}
		}, portal.Options{RestoreToken: "token-known", Cursor: metadata}, false, "", metadata, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults()
			tc.cfg(&cfg)
			f := startPortal(t, cfg)
			s, waits, err := open(t, tc.opt)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			want := map[string]any{"types": uint32(portal.SourceMonitor), "multiple": false}
			if tc.persist {
				want["persist_mode"] = uint32(2)
			}
			if tc.sent != "" {
				want["restore_token"] = tc.sent
			}
			if tc.cursor != 0 {
				want["cursor_mode"] = tc.cursor
			}
			if got := f.selectedOptions(); !reflect.DeepEqual(got, want) {
				t.Errorf("SelectSources options = %v, want %v", got, want)
			}
			if s.Cursor != tc.cursor {
				t.Errorf("Cursor = %d, want %d", s.Cursor, tc.cursor)
			}
			if s.RestoreToken != tc.token {
				t.Errorf("RestoreToken = %q, want %q", s.RestoreToken, tc.token)
			}
			if !reflect.DeepEqual(s.Streams, cfg.streams) {
				t.Errorf("Streams = %+v, want %+v", s.Streams, cfg.streams)
			}
			if n := waits.Load(); n != tc.waits {
				t.Errorf("Waiting called %d times, want %d", n, tc.waits)
			}
			checkRemote(t, f, s)
		})
	}
}

// checkRemote checks that OpenPipeWireRemote's descriptor reaches the
// portal's end of the socket.
func checkRemote(t *testing.T, f *fakePortal, s *portal.Session) {
	t.Helper()
	fd, err := s.OpenPipeWireRemote()
	if err != nil {
		t.Fatalf("OpenPipeWireRemote: %v", err)
	}
	remote := os.NewFile(uintptr(fd), "pipewire")
	defer remote.Close()
	if _, err := remote.Write([]byte("hello")); err != nil {
		t.Fatalf("writing to the remote: %v", err)
	}
	f.mu.Lock()
	peer := f.peer
	f.mu.Unlock()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := peer.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("the portal's end read %q, %v", buf, err)
	}
}

// checkFailed checks that Open failed with want and with none of the
// package's other errors.
func checkFailed(t *testing.T, s *portal.Session, err, want error) {
	t.Helper()
	if s != nil {
		s.Close()
		t.Fatal("Open succeeded")
	}
	if !errors.Is(err, want) {
		t.Fatalf("Open: %v, want %v", err, want)
	}
	for _, other := range []error{portal.ErrCancelled, portal.ErrDenied, portal.ErrClosed, portal.ErrUnavailable} {
		if other != want && errors.Is(err, other) {
			t.Errorf("Open: %v is also %v", err, other)
		}
	}
}

func TestOpenFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func(*fakeConfig)
		want    error
		context string // the step the error names
		session bool   // a session was made, so it must be closed
	}{
		{"Start cancelled by the user", func(c *fakeConfig) { c.startCode = 1 }, portal.ErrCancelled, "starting: ", true},
		{"Start failed", func(c *fakeConfig) { c.startCode = 2 }, portal.ErrDenied, "starting: ", true},
		{"Start without streams", func(c *fakeConfig) { c.streams = nil }, portal.ErrDenied, "starting: ", true},
		{"the desktop ends the session during Start", func(c *fakeConfig) { c.closeInStart = true }, portal.ErrClosed, "starting: ", true},
		{"CreateSession failed", func(c *fakeConfig) { c.createCode = 2 }, portal.ErrDenied, "creating the session: ", false},
		{"CreateSession's call refused", func(c *fakeConfig) { c.createErr = true }, portal.ErrDenied, "creating the session: ", false},
		{"CreateSession without a handle", func(c *fakeConfig) { c.noHandle = true }, portal.ErrDenied, "creating the session: ", false},
		{"SelectSources failed", func(c *fakeConfig) { c.selectCode = 2 }, portal.ErrDenied, "choosing the screen: ", true},
		{"SelectSources cancelled", func(c *fakeConfig) { c.selectCode = 1 }, portal.ErrCancelled, "choosing the screen: ", true},
		{"SelectSources' call refused", func(c *fakeConfig) { c.selectErr = true }, portal.ErrDenied, "choosing the screen: ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults()
			tc.cfg(&cfg)
			f := startPortal(t, cfg)
			s, _, err := open(t, portal.Options{Cursor: portal.CursorEmbedded})
			checkFailed(t, s, err, tc.want)
			if !strings.HasPrefix(err.Error(), tc.context) {
				t.Errorf("Open: %q, want it to start with %q", err, tc.context)
			}
			var want []dbus.ObjectPath
			if tc.session {
				want = []dbus.ObjectPath{f.sessionPath()}
			}
			if got := f.closedSessions(); !reflect.DeepEqual(got, want) {
				t.Errorf("Session.Close calls on %v, want %v", got, want)
			}
		})
	}
}

// TestExpiredToken: a token the desktop no longer knows brings the dialog
// back; the client waits for it and keeps the new token.
func TestExpiredToken(t *testing.T) {
	cfg := defaults()
	cfg.knownToken, cfg.newToken, cfg.dialog = "token-known", "token-fresh", time.Second
	f := startPortal(t, cfg)
	s, waits, err := open(t, portal.Options{RestoreToken: "token-expired", Cursor: portal.CursorEmbedded})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if n := waits.Load(); n != 1 {
		t.Errorf("Waiting called %d times, want 1", n)
	}
	if s.RestoreToken != "token-fresh" {
		t.Errorf("RestoreToken = %q, want token-fresh", s.RestoreToken)
	}
	if got := f.selectedOptions()["restore_token"]; got != "token-expired" {
		t.Errorf("restore_token sent = %v, want token-expired", got)
	}
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		bus  func(t *testing.T)
	}{
		{"no portal on the bus", func(t *testing.T) { testenv.SessionBus(t) }},
		{"no session bus", func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.bus(t)
			begin := time.Now()
			s, waits, err := open(t, portal.Options{})
			checkFailed(t, s, err, portal.ErrUnavailable)
			if d := time.Since(begin); d > 2*time.Second {
				t.Errorf("Open took %v to fail", d)
			}
			if n := waits.Load(); n != 0 {
				t.Errorf("Waiting called %d times", n)
			}
		})
	}
}

// TestContextEnds: the caller gives up while the dialog is up (Start
// unanswered), or while a portal call hangs: the context's error, nothing
// else, and an open dialog is closed through its Request.
func TestContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       func(*fakeConfig)
		dialog    bool // Start's request is open and must be closed
		wantCause error
	}{
		{"cancelled in the dialog", func(c *fakeConfig) { c.dialog = never }, true, context.Canceled},
		{"deadline in a hanging call", func(c *fakeConfig) { c.createHang = true }, false, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults()
			tc.cfg(&cfg)
			f := startPortal(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			begin := time.Now()
			s, err := portal.Open(ctx, portal.Options{Waiting: cancel})
			checkFailed(t, s, err, tc.wantCause)
			if d := time.Since(begin); d > 3*time.Second {
				t.Errorf("Open took %v to give up", d)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			var want []dbus.ObjectPath
			if tc.dialog {
				want = []dbus.ObjectPath{f.startReq}
			}
			if !reflect.DeepEqual(f.reqClosed, want) {
				t.Errorf("Request.Close calls on %v, want %v", f.reqClosed, want)
			}
		})
	}
}

// TestClosedByDesktop: after a successful Open, the session's Closed signal
// closes the Closed channel.
func TestClosedByDesktop(t *testing.T) {
	f := startPortal(t, defaults())
	s, _, err := open(t, portal.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	select {
	case <-s.Closed():
		t.Fatal("Closed before the desktop ended the session")
	case <-time.After(100 * time.Millisecond):
	}
	f.emitClosed()
	select {
	case <-s.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("Closed() still open 5 s after the session's Closed signal")
	}
}

// TestClose: Close ends the session on the portal, closes Closed, can be
// called again and leaves no goroutine behind.
func TestClose(t *testing.T) {
	f := startPortal(t, defaults())
	leaks := goleak.IgnoreCurrent() // the bus's and the fake's own
	s, _, err := open(t, portal.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-s.Closed():
	default:
		t.Error("Closed() still open after Close")
	}
	_ = s.Close()
	if got, want := f.closedSessions(), []dbus.ObjectPath{f.sessionPath()}; !reflect.DeepEqual(got, want) {
		t.Errorf("Session.Close calls on %v, want %v", got, want)
	}
	goleak.VerifyNone(t, leaks)
}
