package capture

import (
	"image"
	"sync"

	"github.com/deskcast/deskcast/media"
)

// Portal is where a Wayland share keeps the screen-cast portal's restore
// token (the desktop's permission to start again without its dialog), and
// what it tells the presenter of the portal. It outlives shares; one per
// app. It is safe for concurrent use.
type Portal struct {
	// opening has a value while a portal session starts, the user's time
	// in the dialog included, so that two starts never show two dialogs:
	// the second waits (or gives up with its ctx) and uses the token the
	// first brought back.
	opening chan struct{}

	mu     sync.Mutex
	token  string
	status string
	// halted says why capture must not ask the portal again until the
	// presenter starts sharing anew (Rearm): the user cancelled or refused
	// in the dialog, or ended the sharing from the desktop. Asking again by
	// itself would put the dialog back every few seconds, or resume
	// sharing with the stored permission against the user's wish.
	halted error
	save   func(token string)
	notify func()
	// cursor is the newest pointer the compositor reported beside the
	// frames (cursor metadata); cursorNew has a value when it changed.
	cursor    portalCursor
	cursorNew chan struct{}
}

// portalCursor is the pointer in a portal stream: its hotspot at (x, y)
// in rect's coordinates (the stream's pixels, or the shared region of
// them), its shape nil while hidden.
type portalCursor struct {
	x, y  int
	shape *media.PointerShape
	rect  image.Rectangle
}

// The portal states a presenter is told of.
const (
	PortalWaiting = "waiting for you to choose a screen in the system dialog"
	PortalEnded   = "the desktop ended the screen sharing"
)

// NewPortal starts from a stored token ("" for none). save, if not nil, is
// called with each new token to store it; notify, if not nil, after each
// status change. Neither may block.
func NewPortal(token string, save func(token string), notify func()) *Portal {
	return &Portal{token: token, save: save, notify: notify, cursorNew: make(chan struct{}, 1),
		opening: make(chan struct{}, 1)}
}

// Rearm lets capture ask the portal again after a refusal or an end: the
// presenter started sharing anew.
func (p *Portal) Rearm() {
	p.mu.Lock()
	p.halted = nil
	p.mu.Unlock()
	p.setStatus("")
}

// halt stops capture from asking again until Rearm, telling why.
func (p *Portal) halt(err error, status string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.halted == nil {
		p.halted = err
	}
	p.mu.Unlock()
	p.setStatus(status)
}

func (p *Portal) haltedBy() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.halted
}

// setCursor publishes the pointer; it never blocks.
func (p *Portal) setCursor(c portalCursor) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.cursor = c
	p.mu.Unlock()
	select {
	case p.cursorNew <- struct{}{}:
	default:
	}
}

// latestCursor returns the newest pointer.
func (p *Portal) latestCursor() portalCursor {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cursor
}

// Reset replaces the stored token (a remembered one, or "" to ask again)
// without calling save.
func (p *Portal) Reset(token string) {
	p.mu.Lock()
	p.token = token
	p.mu.Unlock()
}

// Status is what the portal is doing or why it failed; "" once capture runs.
func (p *Portal) Status() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Token is the stored restore token ("" for none).
func (p *Portal) Token() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token
}

func (p *Portal) setToken(tok string) {
	if p == nil || tok == "" {
		return
	}
	p.mu.Lock()
	changed := tok != p.token
	p.token = tok
	save := p.save
	p.mu.Unlock()
	if changed && save != nil {
		save(tok)
	}
}

func (p *Portal) setStatus(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	changed := s != p.status
	p.status = s
	notify := p.notify
	p.mu.Unlock()
	if changed && notify != nil {
		notify()
	}
}
