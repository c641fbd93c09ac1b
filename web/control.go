package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
)

// Injector carries viewers' input to the shared desktop. Coordinates are
// fractions of the shared picture: 0,0 its top-left corner, 1,1 its
// bottom-right. Buttons are numbered as the DOM does: 0 left, 1 middle, 2 right.
type Injector interface {
	Move(x, y float64) error
	Button(b int, down bool) error
	Scroll(dx, dy int) error
	Key(name string, down bool) error
	Text(s string) error
	ReleaseAll() error // lets go of every button and key still held
}

// ControlKeys are the key names (as KeyboardEvent.key says them) a viewer may send.
var ControlKeys = []string{"Enter", "Backspace", "Tab", "Escape", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown",
	"Delete", "Home", "End", "PageUp", "PageDown", "Shift", "Control", "Alt", "Meta", " "}

// ControlEvent is one message of a viewer's /ws/control socket.
type ControlEvent struct {
	Type   string  `json:"t"`              // move, down, up, wheel, key, text
	X      float64 `json:"x,omitempty"`    // move, down, up, wheel: 0..1 across the picture
	Y      float64 `json:"y,omitempty"`    // 0..1 down the picture
	Button int     `json:"b,omitempty"`    // down, up: 0 left, 1 middle, 2 right
	DX     int     `json:"dx,omitempty"`   // wheel: notches, right positive
	DY     int     `json:"dy,omitempty"`   // wheel: notches, down positive
	Key    string  `json:"k,omitempty"`    // key: one of ControlKeys
	Down   bool    `json:"down,omitempty"` // key: pressed (else released)
	Text   string  `json:"s,omitempty"`    // text: what to type
}

const (
	maxControlMsg  = 512 // bytes in one message
	maxTextRunes   = 64
	maxWheelNotch  = 10
	controlRecheck = 150 * time.Millisecond
)

// ParseControl reads and checks one control message: a known type, numbers
// in range, a known key, printable text. Anything else is an error.
func ParseControl(msg []byte) (ControlEvent, error) {
	ev, err := parseControl(msg)
	if err != nil {
		return ControlEvent{}, err
	}
	return ev, nil
}

func parseControl(msg []byte) (ControlEvent, error) {
	var ev ControlEvent
	if len(msg) > maxControlMsg {
		return ev, errors.New("control message too long")
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ControlEvent{}, fmt.Errorf("control message: %w", err)
	}
	if dec.More() {
		return ControlEvent{}, errors.New("control message: trailing data")
	}
	inPicture := func() error {
		if !(ev.X >= 0 && ev.X <= 1 && ev.Y >= 0 && ev.Y <= 1) { // also refuses NaN
			return fmt.Errorf("control %s: position %v,%v outside 0..1", ev.Type, ev.X, ev.Y)
		}
		return nil
	}
	if ev.foreign() {
		return ControlEvent{}, fmt.Errorf("control %s: fields that belong to another type", ev.Type)
	}
	switch ev.Type {
	case "move":
		return ev, inPicture()
	case "down", "up":
		if ev.Button < 0 || ev.Button > 2 {
			return ControlEvent{}, fmt.Errorf("control %s: button %d, want 0, 1 or 2", ev.Type, ev.Button)
		}
		return ev, inPicture()
	case "wheel":
		if ev.DX < -maxWheelNotch || ev.DX > maxWheelNotch || ev.DY < -maxWheelNotch || ev.DY > maxWheelNotch ||
			ev.DX == 0 && ev.DY == 0 {
			return ControlEvent{}, fmt.Errorf("control wheel: %d,%d notches, want 1 to %d", ev.DX, ev.DY, maxWheelNotch)
		}
		return ev, inPicture()
	case "key":
		for _, k := range ControlKeys {
			if ev.Key == k {
				return ev, nil
			}
		}
		return ControlEvent{}, fmt.Errorf("control key: unknown key %q", ev.Key)
	case "text":
		if ev.Text == "" || !utf8.ValidString(ev.Text) || utf8.RuneCountInString(ev.Text) > maxTextRunes {
			return ControlEvent{}, fmt.Errorf("control text: want 1 to %d characters of UTF-8", maxTextRunes)
		}
		for _, r := range ev.Text {
			// Joiners and variation selectors are not printable alone, but
			// joined emoji and their presentation forms need them.
			if !unicode.IsPrint(r) && r != '\u200d' && !unicode.Is(unicode.Variation_Selector, r) {
				return ControlEvent{}, fmt.Errorf("control text: unprintable %U", r)
			}
		}
		return ev, nil
	}
	return ControlEvent{}, fmt.Errorf("control: unknown type %q", ev.Type)
}

// foreign says whether ev carries a field its type does not have (a button on
// a move, a wheel on a key), so that what is accepted is exactly what is injected.
func (ev ControlEvent) foreign() bool {
	pos, button, wheel := ev.X != 0 || ev.Y != 0, ev.Button != 0, ev.DX != 0 || ev.DY != 0
	key, text := ev.Key != "" || ev.Down, ev.Text != ""
	switch ev.Type {
	case "move":
		return button || wheel || key || text
	case "down", "up":
		return wheel || key || text
	case "wheel":
		return button || key || text
	case "key":
		return pos || button || wheel || text
	case "text":
		return pos || button || wheel || key
	}
	return false
}

// inject sends ev to inj.
func inject(inj Injector, ev ControlEvent) error {
	switch ev.Type {
	case "move":
		return inj.Move(ev.X, ev.Y)
	case "down", "up":
		if err := inj.Move(ev.X, ev.Y); err != nil {
			return err
		}
		return inj.Button(ev.Button, ev.Type == "down")
	case "wheel":
		if err := inj.Move(ev.X, ev.Y); err != nil {
			return err
		}
		return inj.Scroll(ev.DX, ev.DY)
	case "key":
		return inj.Key(ev.Key, ev.Down)
	case "text":
		return inj.Text(ev.Text)
	}
	return fmt.Errorf("control: unknown type %q", ev.Type)
}

// control is the server's remote-control state.
type control struct {
	// gate orders injection against grant changes: a handler holds it for
	// reading from its grant check through the injection, and Grant, Revoke
	// and SetControl hold it for writing from the change through releasing
	// what was held, so no event of a viewer lands after its control ends.
	gate sync.RWMutex
	gen  uint64 // under gate: bumped at every ReleaseAll

	mu   sync.Mutex
	mode access.ControlMode
	inj  Injector
	why  string // why control cannot be turned on here; "" when it can

	events, malformed, refused, limited atomic.Uint64
}

// releaseLocked lets go of every held button and key; gate is held for writing.
func (c *control) releaseLocked(inj Injector) {
	if inj != nil {
		_ = inj.ReleaseAll()
	}
	c.gen++
}

// ControlStatus is the remote-control part of /api/status.
type ControlStatus struct {
	Mode        access.ControlMode `json:"mode"`                  // "", on or all
	Unavailable string             `json:"unavailable,omitempty"` // why control cannot work on this desktop
	Granted     bool               `json:"granted"`               // the asking viewer may control
	Controller  string             `json:"controller,omitempty"`  // presenter only: the viewer ID granted it
	Events      uint64             `json:"events"`                // injected
	Malformed   uint64             `json:"malformed"`             // dropped: not a valid message
	Refused     uint64             `json:"refused"`               // dropped: no grant
	Limited     uint64             `json:"limited"`               // dropped: too fast
}

// SetControl turns remote control on (for granted viewers, or for all) or
// off, injecting through inj. Turning it off takes every grant back; any
// change lets go of what viewers were holding.
func (s *Server) SetControl(mode access.ControlMode, inj Injector) error {
	if mode != access.ControlOff && inj == nil {
		return errors.New("remote control: nothing to inject input with")
	}
	s.ctl.gate.Lock()
	defer s.ctl.gate.Unlock()
	s.ctl.mu.Lock()
	old, oldMode := s.ctl.inj, s.ctl.mode
	s.ctl.mode, s.ctl.inj = mode, inj
	s.ctl.mu.Unlock()
	if mode == access.ControlOff {
		s.viewers.RevokeAll()
	}
	if mode != oldMode || old != inj {
		s.ctl.releaseLocked(old)
	}
	s.log.Info("remote control", "mode", cmp.Or(string(mode), "off"))
	return nil
}

// SetControlUnavailable records why control cannot work here, for the page and the status.
func (s *Server) SetControlUnavailable(why string) {
	s.ctl.mu.Lock()
	s.ctl.why = why
	s.ctl.mu.Unlock()
}

// ControlMode returns whether viewers may drive the desktop.
func (s *Server) ControlMode() access.ControlMode {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	return s.ctl.mode
}

func (s *Server) injector() Injector {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	return s.ctl.inj
}

// Grant gives control to the viewer id, taking it from anyone else (and
// letting go of whatever the one before held).
func (s *Server) Grant(id string) error {
	s.ctl.gate.Lock() // first: control cannot be turned off between the check and the grant
	defer s.ctl.gate.Unlock()
	if s.ControlMode() == access.ControlOff {
		return errors.New("remote control is off")
	}
	prev := s.viewers.Controller()
	if err := s.viewers.Grant(id); err != nil {
		return err
	}
	if prev != "" && prev != id {
		s.ctl.releaseLocked(s.injector())
	}
	s.log.Info("control granted", "id", id)
	return nil
}

// Revoke takes control back from the viewer id ("" for whoever has it) at
// once: its next message is refused, and every button and key is let go.
// It fails only for an id that names no viewer.
func (s *Server) Revoke(id string) error {
	s.ctl.gate.Lock()
	defer s.ctl.gate.Unlock()
	had := s.viewers.Controller()
	if err := s.viewers.Revoke(id); err != nil {
		return err
	}
	if id == "" || had == id { // revoking another viewer leaves the controller's drag alone
		s.ctl.releaseLocked(s.injector())
	}
	s.log.Info("control revoked", "id", cmp.Or(id, "all"))
	return nil
}

// mayControl says whether sess's input goes to the desktop now, and where.
func (s *Server) mayControl(sess *access.Session) (Injector, bool) {
	s.ctl.mu.Lock()
	mode, inj := s.ctl.mode, s.ctl.inj
	s.ctl.mu.Unlock()
	if mode == access.ControlOff || inj == nil {
		return nil, false
	}
	granted, allowed := s.viewers.ControlOf(sess)
	return inj, allowed && (mode == access.ControlAll || granted)
}

func (s *Server) controlStatus(sess *access.Session, presenter bool) ControlStatus {
	s.ctl.mu.Lock()
	st := ControlStatus{Mode: s.ctl.mode, Unavailable: s.ctl.why}
	s.ctl.mu.Unlock()
	if sess != nil {
		_, st.Granted = s.mayControl(sess)
	}
	if presenter {
		st.Controller = s.viewers.Controller()
		st.Events, st.Malformed, st.Refused, st.Limited = s.ctl.events.Load(), s.ctl.malformed.Load(),
			s.ctl.refused.Load(), s.ctl.limited.Load()
	}
	return st
}

// isRelease says whether ev only lets go of something: releases are never
// rate limited or dropped, so nothing stays pressed on the desktop.
func isRelease(ev ControlEvent) bool {
	return ev.Type == "up" || ev.Type == "key" && !ev.Down
}

// pressed is what one viewer's socket holds down, since the last ReleaseAll.
type pressed struct {
	gen     uint64
	buttons map[int]bool
	keys    map[string]bool
}

// note records ev, injected at release generation gen.
func (p *pressed) note(gen uint64, ev ControlEvent) {
	if p.gen != gen || p.buttons == nil {
		*p = pressed{gen: gen, buttons: map[int]bool{}, keys: map[string]bool{}}
	}
	switch ev.Type {
	case "down", "up":
		p.buttons[ev.Button] = ev.Type == "down"
	case "key":
		p.keys[ev.Key] = ev.Down
	}
}

// release lets go of what p holds, unless a ReleaseAll did already.
func (p *pressed) release(gen uint64, inj Injector) {
	if p.gen != gen || inj == nil {
		return
	}
	for b, down := range p.buttons {
		if down {
			_ = inj.Button(b, false)
		}
	}
	for k, down := range p.keys {
		if down {
			_ = inj.Key(k, false)
		}
	}
}

// acceptSocket upgrades r to a WebSocket, unless sharing has stopped (503);
// Accept checks that the page's Origin is this server (no cross-site
// sockets). done, deferred by the handler, closes the socket and tells
// Close the handler is over. A nil c means r was answered.
func (s *Server) acceptSocket(w http.ResponseWriter, r *http.Request) (c *websocket.Conn, done func()) {
	if !s.socketStarted() {
		http.Error(w, "503 service unavailable: sharing has stopped", http.StatusServiceUnavailable)
		return nil, nil
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.sockets.Done()
		return nil, nil
	}
	return c, func() {
		c.CloseNow()
		s.sockets.Done()
	}
}

// handleControl is a viewer's input socket. It tells the page whether it
// may control (at once, and on every change) and injects the messages of
// a viewer who may; everything else is dropped and counted.
func (s *Server) handleControl(w http.ResponseWriter, r *http.Request) {
	sess, _ := r.Context().Value(ctxKey{}).(*access.Session)
	if sess == nil {
		http.Error(w, "no viewer", http.StatusForbidden)
		return
	}
	c, done := s.acceptSocket(w, r)
	if c == nil {
		return
	}
	defer done()
	c.SetReadLimit(maxControlMsg)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	evs := make(chan ControlEvent, 64)
	go func() {
		defer cancel()
		defer close(evs)
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			ev, err := ParseControl(data)
			if typ != websocket.MessageText || err != nil {
				s.ctl.malformed.Add(1)
				s.log.Debug("control message dropped", "addr", r.RemoteAddr, "err", err)
				continue
			}
			select {
			case evs <- ev:
				continue
			default:
			}
			if !isRelease(ev) { // the injector is behind: drop, as any overload
				s.ctl.limited.Add(1)
				continue
			}
			select { // a release waits for room: a lost one would leave a button down
			case evs <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()

	send := func(granted bool) bool {
		st := s.controlStatus(sess, false)
		st.Granted = granted
		msg, _ := json.Marshal(struct {
			Type string `json:"type"`
			ControlStatus
		}{"control", st})
		wctx, cancelW := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancelW()
		return c.Write(wctx, websocket.MessageText, msg) == nil
	}
	_, granted := s.mayControl(sess)
	if !send(granted) {
		return
	}
	var held pressed
	defer func() { // a viewer that leaves lets go of what it holds
		s.ctl.gate.RLock()
		defer s.ctl.gate.RUnlock()
		held.release(s.ctl.gen, s.injector())
	}()
	recheck := time.NewTicker(controlRecheck)
	defer recheck.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return
			}
			s.injectFrom(sess, ev, &held, r.RemoteAddr)
		case <-recheck.C:
			if _, now := s.mayControl(sess); now != granted {
				granted = now
				if !send(granted) {
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// injectFrom injects ev for sess if it may control now and is within its rate.
func (s *Server) injectFrom(sess *access.Session, ev ControlEvent, held *pressed, addr string) {
	s.ctl.gate.RLock()
	defer s.ctl.gate.RUnlock()
	inj, ok := s.mayControl(sess)
	if !ok {
		s.ctl.refused.Add(1)
		return
	}
	if !isRelease(ev) && !sess.TakeControlToken(time.Now()) {
		s.ctl.limited.Add(1)
		return
	}
	if err := inject(inj, ev); err != nil {
		s.log.Warn("injecting input", "addr", addr, "err", err)
		return
	}
	held.note(s.ctl.gen, ev)
	s.ctl.events.Add(1)
}
