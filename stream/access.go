package stream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Approval says whether a new viewer waits for the presenter.
type Approval string

const (
	ApproveOff  Approval = ""     // anyone with the link (and PIN) watches at once
	ApproveAsk  Approval = "ask"  // wait for the presenter; denied when nobody answers in time
	ApproveAuto Approval = "auto" // wait for the presenter; allowed when nobody answers in time
)

// ParseApproval reads --approve's value.
func ParseApproval(s string) (Approval, error) {
	switch strings.ToLower(s) {
	case "", "off", "false", "no":
		return ApproveOff, nil
	case "ask", "true", "yes", "on":
		return ApproveAsk, nil
	case "auto":
		return ApproveAuto, nil
	}
	return "", fmt.Errorf("approve %q: want ask, auto or off", s)
}

// DefaultMaxViewers is how many viewers a share takes unless told otherwise.
const DefaultMaxViewers = 20

// Access is who may watch. The zero value lets in anyone with the link, up to
// DefaultMaxViewers.
type Access struct {
	PIN            string        // "" for none; else 4 to 12 digits
	Approve        Approval      // whether viewers wait for the presenter
	ApproveTimeout time.Duration // how long a viewer waits before the default answer (30 s)
	MaxViewers     int           // 0 means DefaultMaxViewers; -1 means no limit
}

// Validate checks the PIN and the limits.
func (a Access) Validate() error {
	if err := ValidPIN(a.PIN); a.PIN != "" && err != nil {
		return err
	}
	switch a.Approve {
	case ApproveOff, ApproveAsk, ApproveAuto:
	default: // ParseApproval turns the spellings people type into these
		return fmt.Errorf("approve %q: want %q, %q or %q", a.Approve, ApproveOff, ApproveAsk, ApproveAuto)
	}
	if a.MaxViewers < -1 {
		return errors.New("max viewers: want a positive number, 0 for the default or -1 for no limit")
	}
	return nil
}

func (a Access) max() int {
	switch {
	case a.MaxViewers == 0:
		return DefaultMaxViewers
	case a.MaxViewers < 0:
		return int(^uint(0) >> 1)
	}
	return a.MaxViewers
}

func (a Access) timeout() time.Duration {
	if a.ApproveTimeout <= 0 {
		return 30 * time.Second
	}
	return a.ApproveTimeout
}

// ValidPIN reports whether p can be a PIN: 4 to 12 digits.
func ValidPIN(p string) error {
	if len(p) < 4 || len(p) > 12 {
		return errors.New("pin: want 4 to 12 digits")
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return errors.New("pin: use digits only")
		}
	}
	return nil
}

// ViewerState is where a viewer stands.
type ViewerState string

const (
	ViewerNeedsPIN     ViewerState = "pin"          // has the link, not yet the PIN
	ViewerWaiting      ViewerState = "waiting"      // waits for the presenter
	ViewerAllowed      ViewerState = "watching"     // may watch
	ViewerDenied       ViewerState = "denied"       // the presenter said no, or nobody answered
	ViewerDisconnected ViewerState = "disconnected" // the presenter sent it away
)

// Viewer is one browser (one cookie) as the presenter sees it.
type Viewer struct {
	ID      string      `json:"id"` // public; not the cookie's secret
	Addr    string      `json:"addr"`
	Browser string      `json:"browser"`
	State   ViewerState `json:"state"`
	Since   time.Time   `json:"since"`
	Streams int         `json:"streams"` // open media connections
	Present bool        `json:"present"` // streaming, or seen in the last few seconds
	Control bool        `json:"control"` // granted remote control
}

const (
	presentFor        = 10 * time.Second // a page polls its status every second
	forgetAfter       = 5 * time.Minute  // an absent viewer is forgotten
	maxSessions       = 1000             // remembered viewers, present or not
	maxWaitingPerAddr = 3                // viewers of one address waiting for approval at once
	maxStreams        = 8                // open media connections of one viewer: picture, sound, control, and reconnects
	lockFailures      = 5                // wrong PINs from one address ...
	lockWindow        = time.Minute      // ... within this lock it out for as long
)

// session is one viewer's standing, found by the secret in its cookie.
type session struct {
	id, secret string
	addr, ua   string
	since      time.Time
	ctx        context.Context // canceled when the viewer is sent away
	cancel     context.CancelFunc

	// under sessions.mu
	state    ViewerState
	lastSeen time.Time
	streams  int
	page     bool // has loaded the viewer page (or a waiting page)
	control  bool // the presenter granted it remote control
	asked    bool // the presenter has been told about it

	rateMu  sync.Mutex
	ctlRate *bucket // remote-control events, shared by all its sockets
}

// takeControlToken says whether the viewer may send one more control event
// now: a rate per viewer, so more sockets or a reconnect buy nothing.
func (s *session) takeControlToken(now time.Time) bool {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	if s.ctlRate == nil {
		s.ctlRate = &bucket{tokens: controlBurst, rate: controlRate, max: controlBurst}
	}
	return s.ctlRate.take(now)
}

// sessions holds the viewers of one share (a token's lifetime).
type sessions struct {
	mu     sync.Mutex
	access Access
	byHash map[[32]byte]*session
	byID   map[string]*session
	fails  map[netip.Addr]*strikes
	now    func() time.Time
	notify func(Viewer) // a viewer started waiting; nil for none
	gen    uint64       // bumped at every change the presenter should see
	closed bool
}

type strikes struct {
	n           int
	first, lock time.Time
}

func newSessions(a Access, notify func(Viewer)) *sessions {
	return &sessions{access: a, byHash: map[[32]byte]*session{}, byID: map[string]*session{},
		fails: map[netip.Addr]*strikes{}, now: time.Now, notify: notify}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lookup finds the session whose cookie secret is given.
func (ss *sessions) lookup(secret string) *session {
	if len(secret) != 32 {
		return nil
	}
	// Keyed by a hash, so lookup time says nothing about how much of a guess was right.
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byHash[sha256.Sum256([]byte(secret))]
}

// errFull and errBusy refuse a new viewer.
var (
	errTooManyStreams = errors.New("too many streams open for one viewer")
	errFull           = errors.New("this share is full")
	errBusy           = errors.New("too many viewers remembered")
	errNoViewer       = errors.New("not found")
	errTooManyWaiting = errors.New("too many viewers from this address are waiting for the presenter")
)

// create adds a session for a request that showed the token.
func (ss *sessions) create(r *http.Request) (*session, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, errBusy
	}
	now := ss.now()
	ss.pruneLocked(now)
	if ss.presentLocked(now, nil) >= ss.access.max() {
		return nil, errFull
	}
	if ss.access.Approve != ApproveOff && ss.access.PIN == "" {
		// Each new viewer asks the presenter: a few at a time from one address.
		// By strikeKey, as the PIN lockout: an IPv6 /64 is one address.
		n, key := 0, strikeKey(hostOf(r.RemoteAddr))
		for _, o := range ss.byID {
			if o.state == ViewerWaiting && strikeKey(o.addr) == key {
				n++
			}
		}
		if n >= maxWaitingPerAddr {
			return nil, errTooManyWaiting
		}
	}
	if len(ss.byHash) >= maxSessions {
		ss.evictLocked(now)
		if len(ss.byHash) >= maxSessions {
			return nil, errBusy
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{id: randomHex(4), secret: randomHex(16), addr: hostOf(r.RemoteAddr), ua: r.UserAgent(),
		since: now, lastSeen: now, ctx: ctx, cancel: cancel}
	for ss.byID[s.id] != nil {
		s.id = randomHex(4)
	}
	ss.byHash[sha256.Sum256([]byte(s.secret))] = s
	ss.byID[s.id] = s
	ss.startLocked(s)
	ss.gen++
	return s, nil
}

// startLocked moves a new (or newly PIN-verified) session to its next state.
func (ss *sessions) startLocked(s *session) {
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

func (ss *sessions) askLocked(s *session) {
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

func (ss *sessions) decideWaiting(s *session, allow bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s.state != ViewerWaiting {
		return
	}
	ss.setLocked(s, allow)
}

func (ss *sessions) setLocked(s *session, allow bool) {
	if allow {
		s.state = ViewerAllowed
	} else {
		s.state = ViewerDenied
		s.control = false
		s.cancel()
	}
	ss.gen++
}

// Decide answers a waiting viewer, or lets a denied or disconnected one back in.
func (ss *sessions) decide(id string, allow bool) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, errNoViewer)
	}
	switch {
	case s.state == ViewerWaiting:
		ss.setLocked(s, allow)
	case allow && (s.state == ViewerDenied || s.state == ViewerDisconnected):
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.state = ViewerAllowed
		ss.gen++
	case !allow && s.state != ViewerDenied && s.state != ViewerDisconnected:
		s.state = ViewerDisconnected
		s.control = false
		s.cancel()
		ss.gen++
	}
	return nil
}

// disconnect sends a viewer away: its streams end and its pages say so.
func (ss *sessions) disconnect(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, errNoViewer)
	}
	if s.state != ViewerDenied {
		s.state = ViewerDisconnected
	}
	s.control = false
	s.cancel()
	ss.gen++
	return nil
}

// setAccess changes the rules live. Viewers already in stay in; a new PIN
// or approval applies to viewers who come later.
func (ss *sessions) setAccess(a Access) {
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
	ss.gen++
}

func (ss *sessions) getAccess() Access {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.access
}

// checkPIN tries pin for s. It returns errLocked while the address is locked out.
// Strikes count against addr, the address the guess came from.
func (ss *sessions) checkPIN(s *session, addr, pin string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	ip := strikeKey(hostOf(addr))
	st := ss.fails[ip]
	if st != nil && now.Before(st.lock) {
		return errLocked
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
		ss.gen++
		return nil
	}
	if st == nil || now.Sub(st.first) > lockWindow {
		if len(ss.fails) > 10000 {
			for ip, st := range ss.fails { // forget the stale, keep lockouts in force
				if now.After(st.lock) && now.Sub(st.first) > lockWindow {
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
	if st.n >= lockFailures {
		st.lock = now.Add(lockWindow)
		st.n, st.first = 0, now
		return errLocked
	}
	return errWrongPIN
}

var (
	errWrongPIN = errors.New("wrong PIN")
	errLocked   = errors.New("too many wrong PINs: try again in a minute")
)

// enter marks s as seen now, on a page (the viewer page or its status, a
// waiting page) or not, and returns its state and the context that ends when
// the viewer is sent away. A viewer who was away comes back only if there
// is room.
func (ss *sessions) enter(s *session, page bool) (ViewerState, context.Context, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	here := s.presentLocked(now)
	if !here && (s.state == ViewerAllowed || s.state == ViewerWaiting) && (page || s.page) &&
		ss.presentLocked(now, s) >= ss.access.max() {
		return s.state, s.ctx, errFull
	}
	s.lastSeen = now
	s.page = s.page || page
	if here != s.presentLocked(now) {
		ss.gen++
	}
	return s.state, s.ctx, nil
}

func (s *session) stateIs(ss *sessions, st ViewerState) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return s.state == st
}

// hold counts an open stream of s until release. It fails when the share
// is full and s is not yet here.
func (ss *sessions) hold(s *session) (release func(), err error) {
	ss.mu.Lock()
	if !s.presentLocked(ss.now()) && ss.presentLocked(ss.now(), s) >= ss.access.max() {
		ss.mu.Unlock()
		return nil, errFull
	}
	if s.streams >= maxStreams {
		ss.mu.Unlock()
		return nil, errTooManyStreams
	}
	s.streams++
	ss.gen++
	ss.mu.Unlock()
	return func() {
		ss.mu.Lock()
		s.streams--
		s.lastSeen = ss.now()
		ss.gen++
		ss.mu.Unlock()
	}, nil
}

// presentLocked says whether the viewer is here: streaming, or on a page
// that asks the server something every second or two. A script asking for
// a snapshot or the status now and then is not.
func (s *session) presentLocked(now time.Time) bool {
	return s.streams > 0 || s.page && now.Sub(s.lastSeen) < presentFor
}

// presentLocked counts the sessions that take a place, other than except.
func (ss *sessions) presentLocked(now time.Time, except *session) int {
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
func (ss *sessions) pruneLocked(now time.Time) {
	for _, s := range ss.byID {
		away := now.Sub(s.lastSeen)
		// Denied and disconnected viewers are kept for the whole share, so the
		// same browser cannot come back by opening the link again; only
		// evictLocked, under a flood, forgets them.
		kept := s.state == ViewerWaiting || s.state == ViewerDenied || s.state == ViewerDisconnected
		if s.streams == 0 && !kept && (away > forgetAfter || !s.page && away > 30*time.Second) {
			ss.forgetLocked(s)
		}
	}
}

// evictLocked makes room when too many are remembered: the longest away go
// first, down to three quarters of the limit.
func (ss *sessions) evictLocked(now time.Time) {
	var away []*session
	for _, s := range ss.byID {
		if s.streams == 0 && s.state != ViewerWaiting && !s.presentLocked(now) {
			away = append(away, s)
		}
	}
	slices.SortFunc(away, func(a, b *session) int { return a.lastSeen.Compare(b.lastSeen) })
	for _, s := range away {
		if len(ss.byID) <= maxSessions*3/4 {
			break
		}
		ss.forgetLocked(s)
	}
}

func (ss *sessions) forgetLocked(s *session) {
	delete(ss.byHash, sha256.Sum256([]byte(s.secret)))
	delete(ss.byID, s.id)
	s.cancel()
}

func (s *session) viewerLocked(now time.Time) Viewer {
	return Viewer{ID: s.id, Addr: s.addr, Browser: BrowserName(s.ua), State: s.state, Since: s.since,
		Streams: s.streams, Present: s.presentLocked(now), Control: s.control}
}

// grant gives remote control to the viewer id alone.
func (ss *sessions) grant(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return fmt.Errorf("viewer %q: %w", id, errNoViewer)
	}
	if s.state != ViewerAllowed {
		return fmt.Errorf("viewer %q: not watching", id)
	}
	for _, o := range ss.byID {
		o.control = false
	}
	s.control = true
	ss.gen++
	return nil
}

// revoke takes remote control back from id, or from everyone for "".
func (ss *sessions) revoke(id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if id != "" && ss.byID[id] == nil {
		return fmt.Errorf("viewer %q: %w", id, errNoViewer)
	}
	for _, s := range ss.byID {
		if id == "" || s.id == id {
			s.control = false
		}
	}
	ss.gen++
	return nil
}

func (ss *sessions) revokeAll() { _ = ss.revoke("") }

// controlOf says whether s was granted control and may watch.
func (ss *sessions) controlOf(s *session) (granted, allowed bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return s.control, s.state == ViewerAllowed
}

// controller returns the ID of the viewer granted control, or "".
func (ss *sessions) controller() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.byID {
		if s.control && s.state == ViewerAllowed {
			return s.id
		}
	}
	return ""
}

// list returns the viewers the presenter should see: every one present or
// waiting, newest last, and the change generation.
func (ss *sessions) list() ([]Viewer, uint64) {
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

// close ends every viewer's streams.
func (ss *sessions) close() {
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

func isLoopback(remote string) bool {
	ip, err := netip.ParseAddr(hostOf(remote))
	return err == nil && ip.IsLoopback()
}

// BrowserName turns a User-Agent into a short "Browser on System", for the
// presenter's list.
func BrowserName(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	var b string
	switch {
	case has("Edg/") || has("EdgA/") || has("EdgiOS/"):
		b = "Edge"
	case has("OPR/") || has("Opera"):
		b = "Opera"
	case has("SamsungBrowser/"):
		b = "Samsung Internet"
	case has("Firefox/") || has("FxiOS/"):
		b = "Firefox"
	case has("HeadlessChrome/"):
		b = "Headless Chrome"
	case has("Chrome/") || has("CriOS/") || has("Chromium/"):
		b = "Chrome"
	case has("Safari/") && has("Version/"):
		b = "Safari"
	case has("curl/"):
		b = "curl"
	case has("VLC/") || has("LibVLC/"):
		b = "VLC"
	case has("Lavf/"):
		b = "ffmpeg"
	}
	var o string
	switch {
	case has("iPhone"):
		o = "iPhone"
	case has("iPad"):
		o = "iPad"
	case has("Android"):
		o = "Android"
	case has("CrOS"):
		o = "ChromeOS"
	case has("Windows"):
		o = "Windows"
	case has("Mac OS X") || has("Macintosh"):
		o = "macOS"
	case has("Linux") || has("X11"):
		o = "Linux"
	}
	switch {
	case b == "" && o == "":
		if ua == "" {
			return "unknown client"
		}
		return "other client"
	case b == "":
		return "browser on " + o
	case o == "":
		return b
	}
	return b + " on " + o
}
