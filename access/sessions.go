package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The limits and times of the access rules.
const (
	PresentFor   = 10 * time.Second // a viewer seen this recently is present (a page polls its status every second)
	ForgetAfter  = 5 * time.Minute  // an absent viewer is forgotten
	LockFailures = 5                // wrong PINs from one address ...
	LockWindow   = time.Minute      // ... within this lock it out for as long
	MaxStreams   = 8                // open media connections of one viewer: picture, sound, control, and reconnects
)

const (
	maxSessions       = 1000 // remembered viewers, present or not
	maxWaitingPerAddr = 3    // viewers of one address waiting for approval at once
)

// Session is one viewer's standing (one browser, one cookie), found by the
// secret in its cookie.
type Session struct {
	ss         *Sessions
	id, secret string
	addr, ua   string
	since      time.Time
	ctx        context.Context // canceled when the viewer is sent away
	cancel     context.CancelFunc

	// under ss.mu
	state    ViewerState
	lastSeen time.Time
	streams  int
	page     bool // has loaded the viewer page (or a waiting page)
	control  bool // the presenter granted it remote control
	asked    bool // the presenter has been told about it

	rateMu  sync.Mutex
	ctlRate *bucket // remote-control events, shared by all its sockets
}

// ID returns the viewer's public ID, as Viewer.ID; not the cookie's secret.
func (s *Session) ID() string { return s.id }

// Secret returns the value of the viewer's cookie.
func (s *Session) Secret() string { return s.secret }

// UserAgent returns the User-Agent the viewer came with.
func (s *Session) UserAgent() string { return s.ua }

// State returns where the viewer stands now.
func (s *Session) State() ViewerState {
	s.ss.mu.Lock()
	defer s.ss.mu.Unlock()
	return s.state
}

// Is reports whether the viewer stands at st now.
func (s *Session) Is(st ViewerState) bool { return s.State() == st }

// TakeControlToken says whether the viewer may send one more control event
// now: a rate per viewer, so more sockets or a reconnect buy nothing.
func (s *Session) TakeControlToken(now time.Time) bool {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	if s.ctlRate == nil {
		s.ctlRate = &bucket{tokens: controlBurst, rate: controlRate, max: controlBurst}
	}
	return s.ctlRate.take(now)
}

// Sessions holds the viewers of one share (a token's lifetime) and applies
// its Access rules to them. It is safe for concurrent use.
type Sessions struct {
	mu       sync.Mutex
	access   Access
	byHash   map[[32]byte]*Session
	byID     map[string]*Session
	fails    map[netip.Addr]*strikes
	now      func() time.Time
	notify   func(Viewer) // a viewer started waiting; nil for none
	onChange func()       // the list changed; nil for none
	gen      uint64       // bumped at every change the presenter should see
	closed   bool
}

type strikes struct {
	n           int
	first, lock time.Time
}

// Options tune Sessions; the zero value is fine.
type Options struct {
	// OnWaiting is called, on a goroutine of its own, when a viewer starts
	// waiting for the presenter's answer; nil for none.
	OnWaiting func(Viewer)
	// Now is the clock; nil means time.Now. Tests move a fake one by hand.
	Now func() time.Time
	// OnChange is called whenever the list the presenter sees changes (a
	// viewer arrives, waits, is let in or sent away, takes or loses control).
	// It runs under the sessions' lock: it must not block or call Sessions.
	OnChange func()
}

// New returns the sessions of a new share with the rules a.
func New(a Access, opt Options) *Sessions {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Sessions{access: a, byHash: map[[32]byte]*Session{}, byID: map[string]*Session{},
		fails: map[netip.Addr]*strikes{}, now: opt.Now, notify: opt.OnWaiting, onChange: opt.OnChange}
}

// changedLocked records a change of the list; ss.mu is held.
func (ss *Sessions) changedLocked() {
	ss.gen++
	if ss.onChange != nil {
		ss.onChange()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Lookup finds the session whose cookie secret is given, or nil.
func (ss *Sessions) Lookup(secret string) *Session {
	if len(secret) != 32 {
		return nil
	}
	// Keyed by a hash, so lookup time says nothing about how much of a guess was right.
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byHash[sha256.Sum256([]byte(secret))]
}

// Errors that refuse a viewer, or name none.
var (
	ErrTooManyStreams = errors.New("too many streams open for one viewer")                             // Hold: MaxStreams are open
	ErrFull           = errors.New("this share is full")                                               // the viewer limit is reached
	ErrBusy           = errors.New("too many viewers remembered")                                      // Create: no room, or closed
	ErrNoViewer       = errors.New("not found")                                                        // no viewer has the ID
	ErrTooManyWaiting = errors.New("too many viewers from this address are waiting for the presenter") // Create, with approval
)

// Create adds a session for a viewer who showed the token, from remoteAddr
// (host:port, as http.Request.RemoteAddr) with userAgent.
func (ss *Sessions) Create(remoteAddr, userAgent string) (*Session, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, ErrBusy
	}
	now := ss.now()
	ss.pruneLocked(now)
	if ss.presentLocked(now, nil) >= ss.access.max() {
		return nil, ErrFull
	}
	if ss.access.Approve != ApproveOff && ss.access.PIN == "" {
		// Each new viewer asks the presenter: a few at a time from one address.
		// By strikeKey, as the PIN lockout: an IPv6 /64 is one address.
		n, key := 0, strikeKey(hostOf(remoteAddr))
		for _, o := range ss.byID {
			if o.state == ViewerWaiting && strikeKey(o.addr) == key {
				n++
			}
		}
		if n >= maxWaitingPerAddr {
			return nil, ErrTooManyWaiting
		}
	}
	if len(ss.byHash) >= maxSessions {
		ss.evictLocked(now)
		if len(ss.byHash) >= maxSessions {
			return nil, ErrBusy
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{ss: ss, id: randomHex(4), secret: randomHex(16), addr: hostOf(remoteAddr), ua: userAgent,
		since: now, lastSeen: now, ctx: ctx, cancel: cancel}
	for ss.byID[s.id] != nil {
		s.id = randomHex(4)
	}
	ss.byHash[sha256.Sum256([]byte(s.secret))] = s
	ss.byID[s.id] = s
	ss.startLocked(s)
	ss.changedLocked()
	return s, nil
}

// startLocked moves a new (or newly PIN-verified) session to its next state.
func (ss *Sessions) startLocked(s *Session) {
	switch {
	case ss.access.PIN != "":
		s.state = ViewerNeedsPIN
	case ss.access.Approve != ApproveOff:
		s.state = ViewerWaiting
		ss.askLocked(s)
	default:
		s.state = ViewerAllowed
	}
}

func (ss *Sessions) askLocked(s *Session) {
	if s.asked {
		return
	}
	s.asked = true
	allow := ss.access.Approve == ApproveAuto
	time.AfterFunc(ss.access.timeout(), func() { ss.decideWaiting(s, allow) })
	if ss.notify != nil {
		v := s.viewerLocked(ss.now())
		go ss.notify(v)
	}
}

func (ss *Sessions) decideWaiting(s *Session, allow bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s.state != ViewerWaiting {
		return
	}
	ss.setLocked(s, allow)
}

func (ss *Sessions) setLocked(s *Session, allow bool) {
	if allow {
		s.state = ViewerAllowed
	} else {
		s.state = ViewerDenied
		s.control = false
		s.cancel()
	}
	ss.changedLocked()
}

// Decide answers a waiting viewer, or lets a denied or disconnected one back
// in (allow), or sends one that is in away (not allow).
func (ss *Sessions) Decide(id string, allow bool) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, ErrNoViewer)
	}
	switch {
	case s.state == ViewerWaiting:
		ss.setLocked(s, allow)
	case allow && (s.state == ViewerDenied || s.state == ViewerDisconnected):
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.state = ViewerAllowed
		ss.changedLocked()
	case !allow && s.state != ViewerDenied && s.state != ViewerDisconnected:
		s.state = ViewerDisconnected
		s.control = false
		s.cancel()
		ss.changedLocked()
	}
	return nil
}

// Disconnect sends a viewer away: its streams end and its pages say so.
func (ss *Sessions) Disconnect(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, ErrNoViewer)
	}
	if s.state != ViewerDenied {
		s.state = ViewerDisconnected
	}
	s.control = false
	s.cancel()
	ss.changedLocked()
	return nil
}

// SetAccess changes the rules live. Viewers already in stay in; a new PIN
// or approval applies to viewers who come later.
func (ss *Sessions) SetAccess(a Access) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.access
	ss.access = a
	if old.Approve != ApproveOff && a.Approve == ApproveOff {
		for _, s := range ss.byID {
			if s.state == ViewerWaiting {
				ss.setLocked(s, true)
			}
		}
	}
	ss.changedLocked()
}

// Access returns the rules for new viewers.
func (ss *Sessions) Access() Access {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.access
}

// CheckPIN tries pin for s: nil when it is right (or s needs none), else
// ErrWrongPIN, or ErrLocked while the address is locked out. Strikes count
// against addr (host:port), the address the guess came from.
func (ss *Sessions) CheckPIN(s *Session, addr, pin string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	ip := strikeKey(hostOf(addr))
	st := ss.fails[ip]
	if st != nil && now.Before(st.lock) {
		return ErrLocked
	}
	if s.state != ViewerNeedsPIN {
		return nil
	}
	want := ss.access.PIN
	if want == "" || subtle.ConstantTimeCompare([]byte(pin), []byte(want)) == 1 {
		delete(ss.fails, ip)
		s.page = false // its PIN page took no place: it takes one from its next page, if there is room
		if ss.access.Approve != ApproveOff {
			s.state = ViewerWaiting
			ss.askLocked(s)
		} else {
			s.state = ViewerAllowed
		}
		ss.changedLocked()
		return nil
	}
	if st == nil || now.Sub(st.first) > LockWindow {
		if len(ss.fails) > 10000 {
			for ip, st := range ss.fails { // forget the stale, keep lockouts in force
				if now.After(st.lock) && now.Sub(st.first) > LockWindow {
					delete(ss.fails, ip)
				}
			}
			if len(ss.fails) > 10000 { // a flood from everywhere: memory first
				clear(ss.fails)
			}
		}
		st = &strikes{first: now}
		ss.fails[ip] = st
	}
	st.n++
	if st.n >= LockFailures {
		st.lock = now.Add(LockWindow)
		st.n, st.first = 0, now
		return ErrLocked
	}
	return ErrWrongPIN
}

// CheckPIN's answers to a wrong guess.
var (
	ErrWrongPIN = errors.New("wrong PIN")
	ErrLocked   = errors.New("too many wrong PINs: try again in a minute")
)

// Enter marks s as seen now, on a page (the viewer page or its status, a
// waiting page) or not, and returns its state and the context that ends when
// the viewer is sent away. A viewer who was away comes back only if there
// is room.
func (ss *Sessions) Enter(s *Session, page bool) (ViewerState, context.Context, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	here := s.presentLocked(now)
	if !here && (s.state == ViewerAllowed || s.state == ViewerWaiting) && (page || s.page) &&
		ss.presentLocked(now, s) >= ss.access.max() {
		return s.state, s.ctx, ErrFull
	}
	s.lastSeen = now
	s.page = s.page || page
	if here != s.presentLocked(now) {
		ss.changedLocked()
	}
	return s.state, s.ctx, nil
}

// Hold counts an open stream of s until release. It fails with ErrFull when
// the share is full and s is not yet here, ErrTooManyStreams when s has
// MaxStreams open.
func (ss *Sessions) Hold(s *Session) (release func(), err error) {
	ss.mu.Lock()
	if !s.presentLocked(ss.now()) && ss.presentLocked(ss.now(), s) >= ss.access.max() {
		ss.mu.Unlock()
		return nil, ErrFull
	}
	if s.streams >= MaxStreams {
		ss.mu.Unlock()
		return nil, ErrTooManyStreams
	}
	s.streams++
	ss.changedLocked()
	ss.mu.Unlock()
	return func() {
		ss.mu.Lock()
		s.streams--
		s.lastSeen = ss.now()
		ss.changedLocked()
		ss.mu.Unlock()
	}, nil
}

// presentLocked says whether the viewer is here: streaming, or on a page
// that asks the server something every second or two. A script asking for
// a snapshot or the status now and then is not.
func (s *Session) presentLocked(now time.Time) bool {
	return s.streams > 0 || s.page && now.Sub(s.lastSeen) < PresentFor
}

// presentLocked counts the sessions that take a place, other than except.
func (ss *Sessions) presentLocked(now time.Time, except *Session) int {
	n := 0
	for _, s := range ss.byID {
		if s != except && (s.state == ViewerAllowed || s.state == ViewerWaiting) && s.presentLocked(now) {
			n++
		}
	}
	return n
}

// pruneLocked forgets viewers that have been away for a while, and soon
// those that never came back after one request (a script without cookies
// makes a new one each time).
func (ss *Sessions) pruneLocked(now time.Time) {
	for _, s := range ss.byID {
		away := now.Sub(s.lastSeen)
		// Denied and disconnected viewers are kept for the whole share, so the
		// same browser cannot come back by opening the link again; only
		// evictLocked, under a flood, forgets them.
		kept := s.state == ViewerWaiting || s.state == ViewerDenied || s.state == ViewerDisconnected
		if s.streams == 0 && !kept && (away > ForgetAfter || !s.page && away > 30*time.Second) {
			ss.forgetLocked(s)
		}
	}
}

// evictLocked makes room when too many are remembered: the longest away go
// first, down to three quarters of the limit.
func (ss *Sessions) evictLocked(now time.Time) {
	var away []*Session
	for _, s := range ss.byID {
		if s.streams == 0 && s.state != ViewerWaiting && !s.presentLocked(now) {
			away = append(away, s)
		}
	}
	slices.SortFunc(away, func(a, b *Session) int { return a.lastSeen.Compare(b.lastSeen) })
	for _, s := range away {
		if len(ss.byID) <= maxSessions*3/4 {
			break
		}
		ss.forgetLocked(s)
	}
}

func (ss *Sessions) forgetLocked(s *Session) {
	delete(ss.byHash, sha256.Sum256([]byte(s.secret)))
	delete(ss.byID, s.id)
	s.cancel()
}

func (s *Session) viewerLocked(now time.Time) Viewer {
	return Viewer{ID: s.id, Addr: s.addr, Browser: BrowserName(s.ua), State: s.state, Since: s.since,
		Streams: s.streams, Present: s.presentLocked(now), Control: s.control}
}

// Grant gives remote control to the viewer id alone.
func (ss *Sessions) Grant(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, ErrNoViewer)
	}
	if s.state != ViewerAllowed {
		return fmt.Errorf("viewer %q: not watching", id)
	}
	for _, o := range ss.byID {
		o.control = false
	}
	s.control = true
	ss.changedLocked()
	return nil
}

// Revoke takes remote control back from id, or from everyone for "".
func (ss *Sessions) Revoke(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if id != "" && ss.byID[id] == nil {
		return fmt.Errorf("viewer %q: %w", id, ErrNoViewer)
	}
	for _, s := range ss.byID {
		if id == "" || s.id == id {
			s.control = false
		}
	}
	ss.changedLocked()
	return nil
}

// RevokeAll takes remote control back from everyone.
func (ss *Sessions) RevokeAll() { _ = ss.Revoke("") }

// ControlOf says whether s was granted control and may watch.
func (ss *Sessions) ControlOf(s *Session) (granted, allowed bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return s.control, s.state == ViewerAllowed
}

// Controller returns the ID of the viewer granted control, or "".
func (ss *Sessions) Controller() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.byID {
		if s.control && s.state == ViewerAllowed {
			return s.id
		}
	}
	return ""
}

// List returns the viewers the presenter should see: every one present or
// waiting, newest last, and a number that changes whenever the list does.
func (ss *Sessions) List() ([]Viewer, uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	var vs []Viewer
	for _, s := range ss.byID {
		if s.presentLocked(now) || s.state == ViewerWaiting {
			vs = append(vs, s.viewerLocked(now))
		}
	}
	slices.SortFunc(vs, func(a, b Viewer) int { return a.Since.Compare(b.Since) })
	return vs, ss.gen
}

// Close ends every viewer's streams; no viewer is created after it.
func (ss *Sessions) Close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for _, s := range ss.byID {
		s.cancel()
	}
}

// strikeKey is whom wrong PINs count against: the IPv4 address, or the
// IPv6 /64 (one device can pick any address in its network's /64).
func strikeKey(addr string) netip.Addr {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

func hostOf(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}
