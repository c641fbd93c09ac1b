//go:build linux

package input

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"time"
	"unicode"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"

	"github.com/deskcast/deskcast/capture/portal"
)

const (
	keysymReturn = 0xff0d
	keysymTab    = 0xff09

	// maxSpares bounds how many unused keycodes Type borrows for characters
	// the keyboard mapping lacks, leaving the rest to other tools.
	maxSpares = 8
	// spareHold is how long a borrowed keycode keeps its character after its
	// last press before Type may give it another. Clients read the mapping
	// when they handle the event, not when it was sent, so changing it right
	// after the press (as xdotool does) can turn "é" into whatever comes next.
	spareHold = 100 * time.Millisecond
)

// inputSys injects events with XTEST over one X connection. Injector's mutex
// guards it.
type inputSys struct {
	// portal, when set, is a Wayland session's injector, and the rest
	// is unused.
	portal *portalSys

	conn    *xgb.Conn
	root    xproto.Window
	km      keymap
	stale   bool // the server's keyboard mapping changed since km was read
	spares  []*spareKey
	pending []interface{ Check() error }
}

// keymap is the core keyboard mapping, indexed by keysym.
type keymap struct {
	where map[xproto.Keysym]keyPos
	shift xproto.Keycode // a keycode in the Shift modifier; 0 if none
}

// keyPos is where a keysym is: on which keycode, and whether Shift is needed.
type keyPos struct {
	code  xproto.Keycode
	shift bool
}

// spareKey is an unused keycode that Type maps to characters the keyboard
// lacks. It keeps its last character until it is needed for another one or
// Close restores it to nothing.
type spareKey struct {
	code xproto.Keycode
	sym  xproto.Keysym // 0 while unmapped
	used time.Time     // last press
}

func controlAvailable() error {
	if waylandSession() {
		if err := portal.RemoteAvailable(); err != nil {
			return fmt.Errorf("%w: this is a Wayland session, and %w", ErrUnavailable, err)
		}
		return nil
	}
	s, err := openInputSys(context.Background())
	if err != nil {
		return err
	}
	return s.close()
}

// waylandSession reports a Wayland session, where input goes through the
// desktop's RemoteDesktop portal: XTEST would reach only X11 (Xwayland)
// windows. Capture asks the same question (portal.Available).
func waylandSession() bool { return portal.Available() }

func openInputSys(ctx context.Context) (*inputSys, error) {
	if waylandSession() {
		p, err := openPortalSys(ctx)
		if err != nil {
			return nil, err
		}
		return &inputSys{portal: p}, nil
	}
	wayland := os.Getenv("WAYLAND_DISPLAY") != ""
	if os.Getenv("DISPLAY") == "" {
		return nil, fmt.Errorf("%w: no X display (DISPLAY is not set)", ErrUnavailable)
	}
	conn, err := xgb.NewConn()
	if err != nil {
		if wayland {
			return nil, fmt.Errorf("%w: Wayland session without a usable X display: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("%w: connecting to X server: %w", ErrUnavailable, err)
	}
	// Xwayland announces itself: input sent to it reaches X11 windows only.
	if ext, err := xproto.QueryExtension(conn, uint16(len("XWAYLAND")), "XWAYLAND").Reply(); err == nil && ext.Present {
		conn.Close()
		return nil, fmt.Errorf("%w: the X display is Xwayland, so injected input would reach only X11 windows; log in to an X11 session to allow control", ErrUnavailable)
	}
	s := &inputSys{conn: conn, root: xproto.Setup(conn).DefaultScreen(conn).Root}
	if err := xtest.Init(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: X server has no XTEST extension: %w", ErrUnavailable, err)
	}
	if err := s.loadKeymap(); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// loadKeymap reads the keyboard and modifier mappings. Spare keycodes that
// still hold our character stay ours; any others taken meanwhile are dropped.
func (s *inputSys) loadKeymap() error {
	setup := xproto.Setup(s.conn)
	first, count := setup.MinKeycode, int(setup.MaxKeycode)-int(setup.MinKeycode)+1
	kr, err := xproto.GetKeyboardMapping(s.conn, first, byte(count)).Reply()
	if err != nil {
		return fmt.Errorf("reading keyboard mapping: %w", err)
	}
	mr, err := xproto.GetModifierMapping(s.conn).Reply()
	if err != nil {
		return fmt.Errorf("reading modifier mapping: %w", err)
	}
	km := keymap{where: map[xproto.Keysym]keyPos{}}
	var empty []xproto.Keycode
	per := int(kr.KeysymsPerKeycode)
	for i := 0; i < count && (i+1)*per <= len(kr.Keysyms); i++ {
		code := first + xproto.Keycode(i)
		row := kr.Keysyms[i*per : (i+1)*per]
		if allZero(row) {
			empty = append(empty, code)
			continue
		}
		lo, hi := levels(row)
		// The first keycode wins, and a keycode without Shift beats one with.
		if p, ok := km.where[lo]; lo != 0 && (!ok || p.shift) {
			km.where[lo] = keyPos{code: code}
		}
		if _, ok := km.where[hi]; hi != 0 && hi != lo && !ok {
			km.where[hi] = keyPos{code: code, shift: true}
		}
	}
	if n := int(mr.KeycodesPerModifier); n > 0 && len(mr.Keycodes) >= n {
		for _, c := range mr.Keycodes[xproto.MapIndexShift*n : (xproto.MapIndexShift+1)*n] {
			if c != 0 {
				km.shift = c
				break
			}
		}
	}

	var spares []*spareKey
	for _, sp := range s.spares {
		if i := int(sp.code-first) * per; sp.sym != 0 && i < len(kr.Keysyms) && kr.Keysyms[i] == sp.sym {
			spares = append(spares, sp)
		}
	}
	for i := len(empty) - 1; i >= 0 && len(spares) < maxSpares; i-- {
		spares = append(spares, &spareKey{code: empty[i]}) // from the top, away from keycode 8
	}
	s.km, s.spares, s.stale = km, spares, false
	return nil
}

// levels returns a core mapping row's unshifted and shifted keysyms in the
// first group, with the protocol's rule for a lone letter (a, NoSymbol means
// a, A).
func levels(row []xproto.Keysym) (lo, hi xproto.Keysym) {
	if len(row) > 0 {
		lo = row[0]
	}
	if len(row) > 1 {
		hi = row[1]
	}
	if hi == 0 {
		lo, hi = lowerKeysym(lo), upperKeysym(lo)
	}
	return lo, hi
}

func allZero(row []xproto.Keysym) bool {
	for _, k := range row {
		if k != 0 {
			return false
		}
	}
	return true
}

// runeKeysym is the keysym that types r: Latin-1 keysyms equal the code
// point, the rest of Unicode is 0x01000000 + code point.
func runeKeysym(r rune) xproto.Keysym {
	switch {
	case r == '\n':
		return keysymReturn
	case r == '\t':
		return keysymTab
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xff:
		return xproto.Keysym(r)
	}
	return xproto.Keysym(0x01000000 | r)
}

// keysymRune is runeKeysym's inverse for printable keysyms, or -1.
func keysymRune(k xproto.Keysym) rune {
	switch {
	case k >= 0x20 && k <= 0x7e, k >= 0xa0 && k <= 0xff:
		return rune(k)
	case k&0xff000000 == 0x01000000:
		return rune(k & 0xffffff)
	}
	return -1
}

func lowerKeysym(k xproto.Keysym) xproto.Keysym {
	if r := keysymRune(k); r >= 0 {
		return runeKeysym(unicode.ToLower(r))
	}
	return k
}

func upperKeysym(k xproto.Keysym) xproto.Keysym {
	if r := keysymRune(k); r >= 0 {
		return runeKeysym(unicode.ToUpper(r))
	}
	return k
}

func (s *inputSys) fake(typ byte, detail byte, x, y int16) {
	root := xproto.Window(0) // the pointer's screen
	if typ == xproto.MotionNotify {
		root = s.root
	}
	s.pending = append(s.pending, xtest.FakeInputChecked(s.conn, typ, detail, 0, root, x, y, 0))
}

// flush waits until the server has handled every request sent since the last
// flush (one round trip) and returns the first error among them.
func (s *inputSys) flush() error {
	var first error
	for _, c := range s.pending {
		if err := c.Check(); err != nil && first == nil {
			first = err
		}
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	return first
}

// drain empties the connection's event queue, which xgb would otherwise let
// fill until it stops reading. MappingNotify, sent to every client when
// anyone (we included) changes the keyboard, marks our copy stale.
func (s *inputSys) drain() {
	for {
		ev, xerr := s.conn.PollForEvent()
		if ev == nil && xerr == nil {
			return
		}
		if _, ok := ev.(xproto.MappingNotifyEvent); ok {
			s.stale = true
		}
	}
}

func (s *inputSys) area() image.Rectangle {
	if s.portal != nil {
		return s.portal.area()
	}
	return image.Rectangle{}
}

func (s *inputSys) move(x, y int) error {
	if s.portal != nil {
		return s.portal.move(x, y)
	}
	if x < math.MinInt16 || x > math.MaxInt16 || y < math.MinInt16 || y > math.MaxInt16 {
		return errors.New("outside the X coordinate range")
	}
	s.drain()
	s.fake(xproto.MotionNotify, 0, int16(x), int16(y))
	return s.flush()
}

func (s *inputSys) button(b MouseButton, down bool) error {
	if s.portal != nil {
		return s.portal.button(b, down)
	}
	s.drain()
	s.click(byte(b), down)
	return s.flush()
}

func (s *inputSys) click(button byte, down bool) {
	if down {
		s.fake(xproto.ButtonPress, button, 0, 0)
	} else {
		s.fake(xproto.ButtonRelease, button, 0, 0)
	}
}

// scroll clicks X's wheel buttons: 4 up, 5 down, 6 left, 7 right.
func (s *inputSys) scroll(dx, dy int) error {
	if s.portal != nil {
		return s.portal.scroll(dx, dy)
	}
	s.drain()
	notch := func(n int, neg, pos byte) {
		b := pos
		if n < 0 {
			b, n = neg, -n
		}
		for range n {
			s.click(b, true)
			s.click(b, false)
		}
	}
	notch(dy, 4, 5)
	notch(dx, 6, 7)
	return s.flush()
}

func (s *inputSys) key(c keyCode, down bool) error {
	if s.portal != nil {
		return s.portal.key(c, down)
	}
	s.drain()
	if err := s.fresh(); err != nil {
		return err
	}
	p, ok := s.km.where[xproto.Keysym(c.x11)]
	if !ok {
		return fmt.Errorf("no keycode for keysym %#x in the keyboard mapping", c.x11)
	}
	s.press(p.code, down)
	return s.flush()
}

func (s *inputSys) press(code xproto.Keycode, down bool) {
	if down {
		s.fake(xproto.KeyPress, byte(code), 0, 0)
	} else {
		s.fake(xproto.KeyRelease, byte(code), 0, 0)
	}
}

// fresh rereads the keyboard mapping if it changed.
func (s *inputSys) fresh() error {
	if !s.stale {
		return nil
	}
	return s.loadKeymap()
}

func (s *inputSys) typeText(text string) error {
	if s.portal != nil {
		return s.portal.typeText(text)
	}
	s.drain()
	if err := s.fresh(); err != nil {
		return err
	}
	for _, r := range text {
		sym := runeKeysym(r)
		p, ok := s.km.where[sym]
		if !ok || (p.shift && s.km.shift == 0) {
			sp, err := s.borrow(sym)
			if err != nil {
				return errors.Join(fmt.Errorf("%q: %w", r, err), s.flush())
			}
			p = keyPos{code: sp.code}
		}
		if p.shift {
			s.press(s.km.shift, true)
		}
		s.press(p.code, true)
		s.press(p.code, false)
		if p.shift {
			s.press(s.km.shift, false)
		}
		if sp := s.spare(p.code); sp != nil {
			sp.used = time.Now()
		}
	}
	return s.flush()
}

func (s *inputSys) spare(code xproto.Keycode) *spareKey {
	for _, sp := range s.spares {
		if sp.code == code {
			return sp
		}
	}
	return nil
}

// borrow maps sym onto the spare keycode pressed longest ago, as xdotool does
// for characters the keyboard lacks.
func (s *inputSys) borrow(sym xproto.Keysym) (*spareKey, error) {
	var sp *spareKey
	for _, c := range s.spares {
		if sp == nil || c.used.Before(sp.used) {
			sp = c
		}
	}
	if sp == nil {
		return nil, errors.New("no keycode for it and no unused keycode to map it to")
	}
	if wait := spareHold - time.Since(sp.used); sp.sym != 0 && wait > 0 {
		if err := s.flush(); err != nil {
			return nil, err
		}
		time.Sleep(wait)
	}
	if sp.sym != 0 && s.km.where[sp.sym] == (keyPos{code: sp.code}) {
		delete(s.km.where, sp.sym)
	}
	s.pending = append(s.pending, xproto.ChangeKeyboardMappingChecked(s.conn, 1, sp.code, 2, []xproto.Keysym{sym, sym}))
	sp.sym = sym
	s.km.where[sym] = keyPos{code: sp.code}
	return sp, nil
}

// close gives borrowed keycodes back (unless someone else has remapped them
// meanwhile) and disconnects.
func (s *inputSys) close() error {
	if s.portal != nil {
		return s.portal.close()
	}
	defer s.conn.Close()
	err := s.flush()
	s.drain()
	s.stale = true
	if lerr := s.loadKeymap(); lerr != nil {
		return errors.Join(err, lerr)
	}
	for _, sp := range s.spares {
		if sp.sym != 0 {
			s.pending = append(s.pending, xproto.ChangeKeyboardMappingChecked(s.conn, 1, sp.code, 2, []xproto.Keysym{0, 0}))
		}
	}
	if ferr := s.flush(); ferr != nil {
		err = errors.Join(err, fmt.Errorf("restoring keyboard mapping: %w", ferr))
	}
	return err
}
