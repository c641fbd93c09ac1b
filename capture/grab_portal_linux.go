//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/deskcast/deskcast/capture/pipewire"
	"github.com/deskcast/deskcast/capture/portal"
	"github.com/deskcast/deskcast/media"
)

// UsesPortal reports whether the screen is captured through the desktop's
// ScreenCast portal: on a Wayland session, where X11 sees only XWayland's
// windows (portal.Available; DESKCAST_CAPTURE=x11 or =portal overrides it).
func UsesPortal() bool { return portal.Available() }

// portalStartTimeout bounds a portal start, the user's time in the dialog
// included.
const portalStartTimeout = 5 * time.Minute

// portalGrabber captures what the portal's session streams over PipeWire.
// The compositor sends a frame only when the screen changes, and the
// grabber says so on Changes: no polling, no comparing on this path.
type portalGrabber struct {
	sess   *portal.Session
	st     *pipewire.Stream
	state  *Portal
	region image.Rectangle // empty for the whole stream

	changes chan time.Time
	stop    chan struct{}
	watched chan struct{}

	watching bool

	seq  uint64         // the stream's frame number of last
	last *media.Picture // the last frame, handed out again until a new one comes

	mu   sync.Mutex
	size int      // bytes in a whole frame
	free [][]byte // frame buffers back from released pictures
}

func newPortalGrabber(ctx context.Context, cfg ScreenConfig) (grabber, error) {
	if cfg.Monitor != 0 {
		return nil, fmt.Errorf("monitor %d: %w (on Wayland the system dialog chooses the screen)", cfg.Monitor+1, ErrNoMonitor)
	}
	if err := pipewire.Load(); err != nil {
		return nil, err
	}
	st := cfg.Portal
	ctx, cancel := context.WithTimeout(ctx, portalStartTimeout)
	defer cancel()
	sess, err := st.open(ctx)
	if err != nil {
		return nil, err
	}
	g := &portalGrabber{sess: sess, state: st, region: cfg.Region, size: 1920 * 1080 * 4, changes: make(chan time.Time, 1),
		stop: make(chan struct{}), watched: make(chan struct{})}
	fd, err := sess.OpenPipeWireRemote()
	if err == nil {
		g.st, err = pipewire.Open(fd, sess.Streams[0].NodeID, cfg.FPS)
	}
	if err == nil {
		err = g.st.Wait(ctx)
	}
	if err != nil {
		g.Close()
		st.setStatus("screen capture failed: " + err.Error())
		return nil, fmt.Errorf("receiving the screen from PipeWire: %w", err)
	}
	st.setStatus("")
	// One grab now, so that a region that does not fit shows at start-up.
	p, err := g.Grab()
	if err != nil {
		g.Close()
		return nil, err
	}
	p.Release()
	g.watching = true
	go g.watch()
	return g, nil
}

// open starts a portal session with the stored token, the dialog's wait
// and failures told in the status, and keeps the token it brings back.
// A nil Portal keeps nothing.
func (p *Portal) open(ctx context.Context) (*portal.Session, error) {
	if p != nil {
		select {
		case p.opening <- struct{}{}:
			defer func() { <-p.opening }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := p.haltedBy(); err != nil {
		return nil, fmt.Errorf("not asking the desktop again until sharing starts anew: %w", err)
	}
	// The pointer beside the frames, for the pointer source to follow,
	// where there is a Portal to pass it on; else drawn into them.
	cursor := uint32(portal.CursorEmbedded)
	if p != nil {
		cursor = portal.CursorMetadata
	}
	sess, err := portal.Open(ctx, portal.Options{RestoreToken: p.Token(), Cursor: cursor,
		Waiting: func() { p.setStatus(PortalWaiting) }})
	switch {
	case errors.Is(err, portal.ErrCancelled), errors.Is(err, portal.ErrDenied), errors.Is(err, portal.ErrClosed):
		p.halt(err, portalProblem(err))
	case err != nil:
		p.setStatus(portalProblem(err))
	}
	if err != nil {
		return nil, fmt.Errorf("asking the desktop for the screen: %w", err)
	}
	p.setToken(sess.RestoreToken)
	p.setStatus("")
	return sess, nil
}

// Ask gets the desktop's permission now, if none is stored: the dialog
// shows when sharing starts, not when the first viewer comes. It returns
// at once when a token is stored (a stale one shows the dialog later).
func (p *Portal) Ask(ctx context.Context) error {
	if p.Token() != "" {
		return nil
	}
	sess, err := p.open(ctx)
	if err != nil {
		return err
	}
	return sess.Close()
}

// portalProblem is what the presenter is told of a failed portal start.
func portalProblem(err error) string {
	switch {
	case errors.Is(err, portal.ErrCancelled):
		return "screen sharing was cancelled in the system dialog"
	case errors.Is(err, portal.ErrDenied):
		return "permission denied: " + err.Error()
	case errors.Is(err, portal.ErrClosed):
		return PortalEnded
	}
	return err.Error()
}

// watch posts a change notice for each new frame, publishes the pointer
// when it changes (cursor metadata) and stops at the session's end.
func (g *portalGrabber) watch() {
	defer close(g.watched)
	var (
		frames, moves uint64 // the last frame and pointer seen
		serial        uint64 // the pointer image's
		shape         *media.PointerShape
		rgba          = make([]byte, 256*256*4)
	)
	for {
		select {
		case <-g.stop:
			return
		case <-g.sess.Closed():
			g.state.halt(portal.ErrClosed, PortalEnded)
			g.notice()
			return
		case <-g.st.Changes():
		}
		f, _, _ := g.st.Copy(0, nil) // the layout only: nothing is taken
		if f.Seq != frames {
			frames = f.Seq
			g.notice()
		}
		if g.sess.Cursor != portal.CursorMetadata {
			continue
		}
		c := g.st.Cursor(serial, rgba)
		if c.Seq == moves {
			continue
		}
		moves = c.Seq
		if c.Serial != serial && c.W > 0 {
			serial = c.Serial
			var err error
			if shape, err = shapeFromRGBA(rgba[:c.W*c.H*4], c.W, c.H, c.HotX, c.HotY, uint32(c.Serial)); err != nil {
				slog.Debug("pointer image from the compositor", "err", err)
			}
		}
		pc := portalCursor{x: c.X, y: c.Y, rect: image.Rect(0, 0, f.Width, f.Height)}
		if !g.region.Empty() {
			pc.rect = g.region
		}
		if c.Visible {
			pc.shape = shape
		} else {
			pc.x, pc.y = -1, -1
		}
		g.state.setCursor(pc)
	}
}

// shapeFromRGBA builds a pointer shape from the compositor's straight-alpha
// RGBA bitmap.
func shapeFromRGBA(rgba []byte, w, h, hotX, hotY int, serial uint32) (*media.PointerShape, error) {
	argb := make([]uint32, w*h)
	for i := range argb {
		r, gr, b, a := uint32(rgba[4*i]), uint32(rgba[4*i+1]), uint32(rgba[4*i+2]), uint32(rgba[4*i+3])
		argb[i] = a<<24 | (r*a/255)<<16 | (gr*a/255)<<8 | b*a/255
	}
	return newPointerShape(argb, w, h, hotX, hotY, serial)
}

func (g *portalGrabber) notice() {
	select {
	case g.changes <- time.Now():
	default:
	}
}

// Changes implements changeNotifier.
func (g *portalGrabber) Changes() <-chan time.Time { return g.changes }

// Grab returns the newest frame, or the last one again when none came since.
func (g *portalGrabber) Grab() (*media.Picture, error) {
	select {
	case <-g.sess.Closed():
		g.state.halt(portal.ErrClosed, PortalEnded)
		return nil, portal.ErrClosed
	default:
	}
	if _, err := g.st.State(); err != nil {
		g.state.halt(portal.ErrClosed, PortalEnded+": "+err.Error())
		return nil, fmt.Errorf("screen capture stream: %w", err)
	}
	buf := g.buffer(0)
	f, copied, err := g.st.Copy(g.seq, buf)
	if err != nil && f.Width > 0 { // the size changed: a buffer of the new size
		g.mu.Lock()
		g.size, g.free = f.Width*f.Height*4, nil
		g.mu.Unlock()
		buf = g.buffer(0)
		f, copied, err = g.st.Copy(g.seq, buf)
	}
	if err != nil {
		g.put(buf)
		return nil, fmt.Errorf("screen capture stream: %w", err)
	}
	if !copied {
		g.put(buf)
		if g.last == nil {
			return nil, errors.New("screen capture stream: no frame yet")
		}
		return g.last.Retain(), nil
	}
	g.seq = f.Seq
	format := media.BGRX
	if f.RGB {
		format = media.RGBA
	}
	stride := f.Width * 4
	r := image.Rect(0, 0, f.Width, f.Height)
	if !g.region.Empty() {
		if !g.region.In(r) {
			g.put(buf)
			return nil, fmt.Errorf("%d,%d,%d,%d: %w of %dx%d", g.region.Min.X, g.region.Min.Y,
				g.region.Dx(), g.region.Dy(), ErrRegion, f.Width, f.Height)
		}
		r = g.region
	}
	pix := buf[r.Min.Y*stride+r.Min.X*4 : (r.Max.Y-1)*stride+r.Max.X*4]
	p := media.NewPicture(pix, r.Dx(), r.Dy(), stride, format, func() { g.put(buf) })
	if g.last != nil {
		g.last.Release()
	}
	g.last = p.Retain()
	return p, nil
}

// buffer returns a free frame buffer of at least n bytes, or of the last
// frame's size when n is 0.
func (g *portalGrabber) buffer(n int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n == 0 {
		n = g.size
	}
	for len(g.free) > 0 {
		b := g.free[len(g.free)-1]
		g.free = g.free[:len(g.free)-1]
		if len(b) >= n {
			return b
		}
	}
	return make([]byte, n)
}

// put takes back a buffer; it keeps a few, enough for the pictures in
// flight (the one held for comparison, the encoders' ones).
func (g *portalGrabber) put(b []byte) {
	g.mu.Lock()
	if len(g.free) < 4 && len(b) >= g.size {
		g.free = append(g.free, b)
	}
	g.mu.Unlock()
}

// Close ends the stream and the portal session.
func (g *portalGrabber) Close() error {
	select {
	case <-g.stop:
		return nil
	default:
	}
	close(g.stop)
	if g.watching {
		<-g.watched
	}
	if g.st != nil {
		_ = g.st.Close()
	}
	err := g.sess.Close()
	if g.last != nil {
		g.last.Release()
		g.last = nil
	}
	slog.Debug("portal screen capture closed")
	return err
}
