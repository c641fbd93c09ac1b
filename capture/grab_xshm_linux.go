//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
	"golang.org/x/sys/unix"

	"github.com/deskcast/deskcast/media"
)

// xshmGrabber keeps one X connection and a few MIT-SHM segments for the life
// of a capture, so a grab is a single GetImage request that the X server
// answers by writing straight into our memory, and the picture handed on is
// that memory itself. kbinani/screenshot instead opens a new connection and
// segment per call and copies pixel by pixel (~27 ms at 1080p).
//
// Each picture holds its segment until its last reference is released; a
// grab takes a free segment, attaching a new one when every segment is still
// held (a slow encoder, the previous grab kept for comparison). Grab and
// Close are called from one goroutine; releases come from any.
//
// Where the server has the DAMAGE extension, the grabber also watches the
// root window for drawing that touches its rectangle and says so on
// Changes, so that Run grabs when the screen changes and not otherwise.
type xshmGrabber struct {
	conn *xgb.Conn
	root xproto.Drawable
	rect image.Rectangle // in root window coordinates

	// damage accumulates what was drawn on the root window since the last
	// grab; zero without the DAMAGE extension.
	damage  damage.Damage
	changes chan time.Time // see Changes; nil without damage
	watched chan struct{}  // closed when watch has returned

	mu     sync.Mutex
	segs   []*xshmSeg // every attached segment, free or held
	free   []*xshmSeg
	closed bool
}

// maxSegs bounds the segments one grabber attaches (8 MB each at 1080p):
// pictures held beyond that are a leak, and grabbing stops with an error.
const maxSegs = 16

type xshmSeg struct {
	id      shm.Seg
	data    []byte
	release func() // the free func of the segment's pictures
}

func init() {
	// xgb logs every connection without an Xauthority file to stderr; the
	// errors that matter reach us as return values.
	xgb.Logger.SetOutput(io.Discard)
}

func newPlatformGrabber(ctx context.Context, cfg ScreenConfig) (grabber, error) {
	if UsesPortal() {
		return newPortalGrabber(ctx, cfg)
	}
	monitor, region := cfg.Monitor, cfg.Region
	g, err := newXShmGrabber(monitor, region)
	switch {
	case err == nil:
		return g, nil
	case errors.Is(err, ErrNoMonitor) || errors.Is(err, ErrRegion):
		return nil, err
	}
	// Remote displays, servers without MIT-SHM and odd visuals land here.
	return newGenericGrabber(monitor, region, fmt.Errorf("xshm unavailable: %w", err))
}

func newXShmGrabber(monitor int, region image.Rectangle) (*xshmGrabber, error) {
	conn, err := xgb.NewConn()
	if err != nil {
		return nil, fmt.Errorf("connecting to X server: %w", err)
	}
	g := &xshmGrabber{conn: conn}
	if err := g.init(monitor, region); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

func (g *xshmGrabber) init(monitor int, region image.Rectangle) error {
	conn := g.conn
	setup := xproto.Setup(conn)
	screen := setup.DefaultScreen(conn)
	g.root = xproto.Drawable(screen.Root)
	if setup.ImageByteOrder != xproto.ImageOrderLSBFirst || screen.RootDepth != 24 {
		return fmt.Errorf("unsupported visual: depth %d, byte order %d", screen.RootDepth, setup.ImageByteOrder)
	}
	bpp := 0
	for _, f := range setup.PixmapFormats {
		if f.Depth == 24 {
			bpp = int(f.BitsPerPixel)
		}
	}
	if bpp != 32 {
		return fmt.Errorf("unsupported pixmap format: %d bits per pixel", bpp)
	}
	mon, err := monitorRect(conn, monitor)
	if err != nil {
		return err
	}
	g.rect, err = regionOf(mon, region)
	if err != nil {
		return err
	}
	if err := initShm(conn); err != nil {
		return fmt.Errorf("MIT-SHM extension: %w", err)
	}
	// One grab now, so that a failure shows at start-up rather than in the loop.
	p, err := g.Grab()
	if err != nil {
		return err
	}
	p.Release()
	if err := g.watchDamage(); err != nil {
		slog.Info("polling the screen at the frame rate", "reason", err)
	}
	return nil
}

// watchDamage creates the damage object and starts watch. The level is
// DeltaRectangles: the server reports each rectangle drawn on that it has not
// reported since the last Subtract, which Grab sends right before each grab,
// so a busy screen sends a few events per frame, not one per drawing
// request, and anything drawn after a grab started is reported again.
func (g *xshmGrabber) watchDamage() error {
	if err := initDamage(g.conn); err != nil {
		return fmt.Errorf("DAMAGE extension: %w", err)
	}
	// The server refuses other DAMAGE requests until the version is agreed.
	if _, err := damage.QueryVersion(g.conn, 1, 1).Reply(); err != nil {
		return fmt.Errorf("DAMAGE extension version: %w", err)
	}
	id, err := damage.NewDamageId(g.conn)
	if err == nil {
		err = damage.CreateChecked(g.conn, id, g.root, damage.ReportLevelDeltaRectangles).Check()
	}
	if err != nil {
		return fmt.Errorf("watching the screen for changes: %w", err)
	}
	// The server reports a new window damage object's whole window as
	// damaged, and Check's round trip has brought that event in: it is
	// dropped, as Run's first grab is unconditional.
	for {
		if ev, xerr := g.conn.PollForEvent(); ev == nil && xerr == nil {
			break
		}
	}
	g.damage = id
	g.changes = make(chan time.Time, 1)
	g.watched = make(chan struct{})
	go g.watch()
	return nil
}

// watch reads the connection's events until it closes and posts a notice on
// changes for each damage to the grabbed rectangle. Every event must be
// read: xgb stops reading replies while its event queue is full.
func (g *xshmGrabber) watch() {
	defer close(g.watched)
	for {
		ev, xerr := g.conn.WaitForEvent()
		switch ev := ev.(type) {
		case damage.NotifyEvent:
			a := ev.Area // root window coordinates, as the damage is the root's
			r := image.Rect(int(a.X), int(a.Y), int(a.X)+int(a.Width), int(a.Y)+int(a.Height))
			if !r.Overlaps(g.rect) {
				continue
			}
			select {
			case g.changes <- time.Now():
			default: // one is pending, and its grab will see this change too
			}
		case nil:
			if xerr == nil {
				return // the connection is closed
			}
			// An unchecked request failed (a Subtract, a Detach); the grab
			// that follows reports what matters.
			slog.Debug("X error on the screen capture connection", "err", xerr)
		}
	}
}

// Changes implements changeNotifier: nil without the DAMAGE extension.
func (g *xshmGrabber) Changes() <-chan time.Time {
	if g.changes == nil {
		return nil // not a nil channel in a non-nil interface
	}
	return g.changes
}

func attachSeg(conn *xgb.Conn, size int) (*xshmSeg, error) {
	shmid, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|0o600)
	if err != nil {
		return nil, fmt.Errorf("creating shared memory: %w", err)
	}
	// Marked for removal once both sides have attached, so it cannot outlive us.
	defer unix.SysvShmCtl(shmid, unix.IPC_RMID, nil)
	data, err := unix.SysvShmAttach(shmid, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("attaching shared memory: %w", err)
	}
	seg, err := shm.NewSegId(conn)
	if err == nil {
		err = shm.AttachChecked(conn, seg, uint32(shmid), false).Check()
	}
	if err != nil {
		_ = unix.SysvShmDetach(data)
		return nil, fmt.Errorf("attaching shared memory to the X server: %w", err)
	}
	return &xshmSeg{id: seg, data: data}, nil
}

// Grab captures the rectangle into a free segment; the picture gives the
// segment back when its last reference is released.
func (g *xshmGrabber) Grab() (*media.Picture, error) {
	s, err := g.take()
	if err != nil {
		return nil, err
	}
	if g.damage != 0 {
		// Repaired before the image is taken, on the same connection, so
		// that what is drawn from now on is reported again, and what was
		// drawn before is in this picture.
		damage.Subtract(g.conn, g.damage, 0, 0)
	}
	_, err = shm.GetImage(g.conn, g.root, int16(g.rect.Min.X), int16(g.rect.Min.Y),
		uint16(g.rect.Dx()), uint16(g.rect.Dy()), 0xffffffff, xproto.ImageFormatZPixmap, s.id, 0).Reply()
	if err != nil {
		g.put(s)
		return nil, fmt.Errorf("grabbing screen: %w", err)
	}
	return media.NewPicture(s.data, g.rect.Dx(), g.rect.Dy(), g.rect.Dx()*4, media.BGRX, s.release), nil
}

// take returns a free segment, attaching a new one when none is.
func (g *xshmGrabber) take() (*xshmSeg, error) {
	g.mu.Lock()
	switch n := len(g.free); {
	case g.closed:
		g.mu.Unlock()
		return nil, errors.New("grabbing screen: grabber closed")
	case n > 0:
		s := g.free[n-1]
		g.free = g.free[:n-1]
		g.mu.Unlock()
		return s, nil
	case len(g.segs) >= maxSegs:
		g.mu.Unlock()
		return nil, fmt.Errorf("grabbing screen: all %d shared-memory segments are held by unreleased pictures", maxSegs)
	}
	g.mu.Unlock()
	// Unlocked: only releases run meanwhile, and they touch the free list
	// alone; Close is not called during a Grab.
	s, err := attachSeg(g.conn, g.rect.Dx()*g.rect.Dy()*4)
	if err != nil {
		return nil, err
	}
	s.release = func() { g.put(s) }
	g.mu.Lock()
	g.segs = append(g.segs, s)
	g.mu.Unlock()
	return s, nil
}

// put takes back a segment whose picture was released: onto the free list,
// or, once the grabber is closed, out of our address space.
func (g *xshmGrabber) put(s *xshmSeg) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		_ = unix.SysvShmDetach(s.data) // Close detached it from the X server
		return
	}
	g.free = append(g.free, s)
}

// Close detaches every segment from the X server and unmaps the free ones;
// a segment still in a picture stays mapped until that picture's last
// release.
func (g *xshmGrabber) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	segs, free := g.segs, g.free
	g.segs, g.free = nil, nil
	g.mu.Unlock()
	for _, s := range segs {
		shm.Detach(g.conn, s.id)
	}
	for _, s := range free {
		_ = unix.SysvShmDetach(s.data)
	}
	// Closing the connection destroys the damage object and ends watch.
	g.conn.Close()
	if g.watched != nil {
		<-g.watched
	}
	return nil
}

// monitorRect returns monitor's rectangle in root window coordinates.
func monitorRect(conn *xgb.Conn, monitor int) (image.Rectangle, error) {
	screens := screenRects(conn)
	if monitor < 0 || monitor >= len(screens) {
		return image.Rectangle{}, fmt.Errorf("monitor %d: %w (have %d)", monitor+1, ErrNoMonitor, len(screens))
	}
	return screens[monitor], nil
}

// Monitors lists the X screen's monitors in Xinerama's order (the first is
// shown as primary), or the whole root window when the server has no Xinerama.
// On a Wayland session it lists one monitor without bounds: the one the
// desktop's dialog chooses.
func Monitors() ([]Monitor, error) {
	if UsesPortal() {
		return []Monitor{{Index: 0, Primary: true}}, nil
	}
	conn, err := xgb.NewConn()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDisplay, err)
	}
	defer conn.Close()
	rects := screenRects(conn)
	ms := make([]Monitor, len(rects))
	for i, r := range rects {
		ms[i] = Monitor{Index: i, Bounds: r, Primary: i == 0}
	}
	return ms, nil
}

func screenRects(conn *xgb.Conn) []image.Rectangle {
	var screens []image.Rectangle
	if _, _, err := initExt(conn, "XINERAMA", xinerama.Init); err == nil {
		if r, err := xinerama.QueryScreens(conn).Reply(); err == nil {
			for _, s := range r.ScreenInfo {
				screens = append(screens, image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height)))
			}
		}
	}
	if len(screens) == 0 {
		s := xproto.Setup(conn).DefaultScreen(conn)
		screens = []image.Rectangle{image.Rect(0, 0, int(s.WidthInPixels), int(s.HeightInPixels))}
	}
	return screens
}

// initShm makes MIT-SHM requests usable on conn (we read none of its events).
func initShm(conn *xgb.Conn) error {
	_, _, err := initExt(conn, "MIT-SHM", shm.Init)
	return err
}

// initDamage makes DAMAGE requests usable on conn and its events readable:
// a server that numbers them otherwise than the first (a second X server
// with other extensions) is polled instead.
func initDamage(conn *xgb.Conn) error {
	first, registered, err := initExt(conn, "DAMAGE", damage.Init)
	if err == nil && first != registered {
		err = fmt.Errorf("DamageNotify is event %d here, but %d on the first X server", first, registered)
	}
	return err
}
