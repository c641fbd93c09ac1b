// Package portal asks the desktop for the screen through xdg-desktop-portal's
// ScreenCast interface over D-Bus, the way a Wayland session allows it.
package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName      = "org.freedesktop.portal.Desktop"
	objectPath   = "/org/freedesktop/portal/desktop"
	screenCastIf = "org.freedesktop.portal.ScreenCast"
	requestIf    = "org.freedesktop.portal.Request"
	sessionIf    = "org.freedesktop.portal.Session"
)

// The portal's source types and cursor modes (bit flags).
const (
	SourceMonitor = 1
	SourceWindow  = 2
	SourceVirtual = 4

	CursorHidden   = 1
	CursorEmbedded = 2
	CursorMetadata = 4
)

// persistUntilRevoked is persist_mode 2: the permission outlives this
// session and Deskcast, until the user revokes it in the desktop's settings.
const persistUntilRevoked = 2

var (
	// ErrUnavailable means the session bus has no ScreenCast portal.
	ErrUnavailable = errors.New("the desktop offers no screen-sharing portal")
	// ErrCancelled means the user closed the system dialog without choosing.
	ErrCancelled = errors.New("screen sharing was cancelled in the system dialog")
	// ErrDenied means the portal refused (response 2): permission denied or an error.
	ErrDenied = errors.New("the desktop refused screen sharing")
	// ErrClosed means the desktop ended the session (the user stopped it
	// from the desktop's own indicator, or the compositor went away).
	ErrClosed = errors.New("the desktop ended the screen-sharing session")
)

// Options say what to ask the portal for.
type Options struct {
	// RestoreToken is the token a previous session returned; with it a
	// desktop that still has the permission starts without a dialog.
	RestoreToken string
	// Cursor is the preferred cursor mode; the portal's best offered one
	// is taken when it does not offer this one.
	Cursor uint32
	// Waiting, when set, is called once if the portal has not answered Start
	// within a moment: the desktop is showing its dialog.
	Waiting func()
	// Devices, when not 0, makes the session a remote-desktop one (the
	// RemoteDesktop interface) that may also send input to these devices
	// (DeviceKeyboard, DevicePointer), through the Notify methods.
	Devices uint32
}

// Stream is one PipeWire stream the portal opened for us.
type Stream struct {
	NodeID   uint32
	Position image.Point // in the desktop's logical layout, when told
	Size     image.Point // logical size, when told
}

// Session is a started screen-cast session. Close ends it.
type Session struct {
	conn    *dbus.Conn
	handle  dbus.ObjectPath
	Streams []Stream
	// RestoreToken is the token to keep for the next session; empty when
	// the portal gave none (persistence refused or not supported).
	RestoreToken string
	// Cursor is the cursor mode the portal agreed to.
	Cursor uint32
	// Devices are the input devices a remote-desktop session may drive, as
	// the user allowed them in the dialog (0: none).
	Devices uint32

	closed    chan struct{}
	closeOnce sync.Once
	signals   chan *dbus.Signal
	watching  bool
	done      chan struct{} // closed when watch returns
}

// Available reports whether this is a Wayland session, where the portals
// are the way to the screen and the input, as capture and input both ask.
// The session says so in XDG_SESSION_TYPE; started outside a login session
// (a script, a terminal multiplexer) that may be unset, and then
// WAYLAND_DISPLAY tells. An X11 session with a WAYLAND_DISPLAY (a nested
// compositor for testing) is X11. DESKCAST_CAPTURE=x11 or =portal overrides.
func Available() bool {
	switch os.Getenv("DESKCAST_CAPTURE") {
	case "x11":
		return false
	case "portal":
		return true
	}
	session := os.Getenv("XDG_SESSION_TYPE")
	return session == "wayland" || session == "" && os.Getenv("WAYLAND_DISPLAY") != ""
}

// Open asks the portal for one monitor and starts the session. ctx bounds
// the whole exchange, including the time the user takes in the dialog.
func Open(ctx context.Context, opt Options) (*Session, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to the session bus: %w", ErrUnavailable, err)
	}
	s := &Session{conn: conn, closed: make(chan struct{}), done: make(chan struct{}),
		signals: make(chan *dbus.Signal, 16)}
	conn.Signal(s.signals)
	if err := s.open(ctx, opt); err != nil {
		s.Close()
		return nil, err
	}
	s.watching = true
	go s.watch()
	return s, nil
}

func (s *Session) open(ctx context.Context, opt Options) error {
	desk := s.conn.Object(busName, objectPath)
	v, err := desk.GetProperty(screenCastIf + ".version")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	version, _ := v.Value().(uint32)
	// A remote-desktop session is made and started on its own interface,
	// and its sources chosen on the screen-cast one.
	iface := screenCastIf
	if opt.Devices != 0 {
		iface = remoteIf
		if _, err := desk.GetProperty(remoteIf + ".version"); err != nil {
			return fmt.Errorf("%w: no remote-desktop portal: %w", ErrUnavailable, err)
		}
	}
	cursors := uint32(CursorEmbedded)
	if v, err := desk.GetProperty(screenCastIf + ".AvailableCursorModes"); err == nil {
		cursors, _ = v.Value().(uint32)
	}

	res, err := s.request(ctx, iface+".CreateSession", func(tok string) []any {
		return []any{map[string]dbus.Variant{
			"handle_token":         dbus.MakeVariant(tok),
			"session_handle_token": dbus.MakeVariant(token()),
		}}
	}, nil)
	if err != nil {
		return fmt.Errorf("creating the session: %w", err)
	}
	h, _ := res["session_handle"].Value().(string)
	if h == "" {
		return fmt.Errorf("creating the session: %w: no session handle", ErrDenied)
	}
	s.handle = dbus.ObjectPath(h)
	if err := s.conn.AddMatchSignal(dbus.WithMatchObjectPath(s.handle), dbus.WithMatchInterface(sessionIf),
		dbus.WithMatchMember("Closed")); err != nil {
		return fmt.Errorf("watching the session: %w", err)
	}

	if opt.Devices != 0 {
		if err := s.selectDevices(ctx, opt); err != nil {
			return err
		}
	}

	s.Cursor = pickCursor(opt.Cursor, cursors)
	sel := map[string]dbus.Variant{
		"types":    dbus.MakeVariant(uint32(SourceMonitor)),
		"multiple": dbus.MakeVariant(false),
	}
	if s.Cursor != 0 {
		sel["cursor_mode"] = dbus.MakeVariant(s.Cursor)
	}
	if version >= 4 && opt.Devices == 0 { // a remote-desktop session persists through SelectDevices
		sel["persist_mode"] = dbus.MakeVariant(uint32(persistUntilRevoked))
		if opt.RestoreToken != "" {
			sel["restore_token"] = dbus.MakeVariant(opt.RestoreToken)
		}
	}
	if _, err := s.request(ctx, screenCastIf+".SelectSources", func(tok string) []any {
		sel["handle_token"] = dbus.MakeVariant(tok)
		return []any{s.handle, sel}
	}, nil); err != nil {
		return fmt.Errorf("choosing the screen: %w", err)
	}

	res, err = s.request(ctx, iface+".Start", func(tok string) []any {
		return []any{s.handle, "", map[string]dbus.Variant{"handle_token": dbus.MakeVariant(tok)}}
	}, opt.Waiting)
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	s.RestoreToken, _ = res["restore_token"].Value().(string)
	s.Devices, _ = res["devices"].Value().(uint32)
	s.Streams, err = parseStreams(res["streams"])
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	return nil
}

// pickCursor is want when the portal offers it, else the best offered mode
// (metadata, then embedded), else 0 (leave it to the portal).
func pickCursor(want, offered uint32) uint32 {
	for _, m := range []uint32{want, CursorMetadata, CursorEmbedded} {
		if m != 0 && offered&m != 0 {
			return m
		}
	}
	return 0
}

// parseStreams reads Start's streams result, a(ua{sv}).
func parseStreams(v dbus.Variant) ([]Stream, error) {
	var raw []struct {
		Node  uint32
		Props map[string]dbus.Variant
	}
	if err := dbus.Store([]any{v.Value()}, &raw); err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%w: no stream in the portal's answer", ErrDenied)
	}
	ss := make([]Stream, len(raw))
	for i, r := range raw {
		ss[i].NodeID = r.Node
		ss[i].Position = pair(r.Props["position"])
		ss[i].Size = pair(r.Props["size"])
	}
	return ss, nil
}

// pair reads an (ii) property of a stream, such as position and size; the
// zero point when the portal does not tell it. godbus decodes a struct as
// []any; dbus.Store cannot put that into an array, and it panics on an
// absent property.
func pair(v dbus.Variant) image.Point {
	f, _ := v.Value().([]any)
	if len(f) != 2 {
		return image.Point{}
	}
	x, okX := f[0].(int32)
	y, okY := f[1].(int32)
	if !okX || !okY {
		return image.Point{}
	}
	return image.Pt(int(x), int(y))
}

// request calls a portal method that answers through a Request object's
// Response signal, and returns the response's results. args makes the
// arguments from the handle token. waiting, when set, is called once the
// answer has taken longer than a moment.
func (s *Session) request(ctx context.Context, method string, args func(tok string) []any, waiting func()) (map[string]dbus.Variant, error) {
	tok := token()
	// Subscribe before the call, so that a quick answer is not missed: the
	// request's path is known in advance from our unique name and the token.
	sender := strings.ReplaceAll(strings.TrimPrefix(s.conn.Names()[0], ":"), ".", "_")
	path := dbus.ObjectPath(objectPath + "/request/" + sender + "/" + tok)
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(requestIf), dbus.WithMatchMember("Response")}
	if err := s.conn.AddMatchSignal(match...); err != nil {
		return nil, fmt.Errorf("watching the request: %w", err)
	}
	defer s.conn.RemoveMatchSignal(match...) //nolint:errcheck // best effort

	var handle dbus.ObjectPath
	if err := s.conn.Object(busName, objectPath).CallWithContext(ctx, method, 0, args(tok)...).Store(&handle); err != nil {
		if ctx.Err() != nil { // we gave up waiting; the portal refused nothing
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	if handle != path { // portals before version 0.9 chose the path themselves
		path = handle
		if err := s.conn.AddMatchSignal(dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(requestIf), dbus.WithMatchMember("Response")); err != nil {
			return nil, fmt.Errorf("watching the request: %w", err)
		}
	}
	var slow <-chan time.Time
	if waiting != nil {
		t := time.NewTimer(500 * time.Millisecond)
		defer t.Stop()
		slow = t.C
	}
	for {
		select {
		case <-ctx.Done():
			// Close the request so the dialog goes away with us.
			_ = s.call(path, requestIf+".Close").Err
			return nil, ctx.Err()
		case <-slow:
			waiting()
		case sig, ok := <-s.signals:
			if !ok {
				return nil, fmt.Errorf("%w: the session bus went away", ErrClosed)
			}
			if sig.Path != path || sig.Name != requestIf+".Response" || len(sig.Body) < 2 {
				if sig.Path == s.handle && sig.Name == sessionIf+".Closed" {
					return nil, ErrClosed
				}
				continue
			}
			code, _ := sig.Body[0].(uint32)
			results, _ := sig.Body[1].(map[string]dbus.Variant)
			switch code {
			case 0:
				return results, nil
			case 1:
				return nil, ErrCancelled
			default:
				return nil, ErrDenied
			}
		}
	}
}

// OpenPipeWireRemote returns a file descriptor of a PipeWire connection that
// sees only this session's streams. The caller owns it.
func (s *Session) OpenPipeWireRemote() (int, error) {
	var fd dbus.UnixFD
	err := s.call(objectPath, screenCastIf+".OpenPipeWireRemote", s.handle, map[string]dbus.Variant{}).Store(&fd)
	if err != nil {
		return -1, fmt.Errorf("opening the PipeWire remote: %w", err)
	}
	return int(fd), nil
}

// Closed is closed when the desktop ends the session or Close is called.
func (s *Session) Closed() <-chan struct{} { return s.closed }

// watch closes s.closed on the session's Closed signal.
func (s *Session) watch() {
	defer close(s.done)
	for sig := range s.signals {
		if sig.Path == s.handle && sig.Name == sessionIf+".Closed" {
			s.closeOnce.Do(func() { close(s.closed) })
		}
	}
	s.closeOnce.Do(func() { close(s.closed) }) // the bus went away
}

// Close ends the session and the D-Bus connection.
func (s *Session) Close() error {
	if s.handle != "" {
		_ = s.call(s.handle, sessionIf+".Close").Err
	}
	err := s.conn.Close() // closes s.signals, which ends watch
	if s.watching {
		<-s.done
	}
	s.closeOnce.Do(func() { close(s.closed) })
	return err
}

// callTimeout bounds a call that needs no user: a portal that hangs must not
// hang capture's Close or a viewer's input.
const callTimeout = 3 * time.Second

// call calls a method of the portal's object at path, within callTimeout.
func (s *Session) call(path dbus.ObjectPath, method string, args ...any) *dbus.Call {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return s.conn.Object(busName, path).CallWithContext(ctx, method, 0, args...)
}

// token is a fresh handle token: letters, digits and underscores only.
func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "deskcast_" + hex.EncodeToString(b[:])
}
