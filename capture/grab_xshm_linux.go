//go:build linux

package capture

import (
	"errors"
	"fmt"
	"image"
	"io"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
	"golang.org/x/sys/unix"
)

// xshmGrabber keeps one X connection and two MIT-SHM segments for the life of
// a capture, so a grab is a single GetImage request that the X server answers
// by writing straight into our memory. kbinani/screenshot instead opens a new
// connection and segment per call and copies pixel by pixel (~27 ms at 1080p).
type xshmGrabber struct {
	conn *xgb.Conn
	root xproto.Drawable
	rect image.Rectangle // in root window coordinates
	segs [2]xshmSeg
	next int
}

type xshmSeg struct {
	id   shm.Seg
	data []byte
}

func init() {
	// xgb logs every connection without an Xauthority file to stderr; the
	// errors that matter reach us as return values.
	xgb.Logger.SetOutput(io.Discard)
}

func newPlatformGrabber(monitor int, region image.Rectangle) (grabber, error) {
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
	size := g.rect.Dx() * g.rect.Dy() * 4
	for i := range g.segs {
		if g.segs[i], err = attachSeg(conn, size); err != nil {
			return err
		}
	}
	// One grab now, so that a failure shows at start-up rather than in the loop.
	_, err = g.Grab()
	return err
}

func attachSeg(conn *xgb.Conn, size int) (xshmSeg, error) {
	shmid, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|0o600)
	if err != nil {
		return xshmSeg{}, fmt.Errorf("creating shared memory: %w", err)
	}
	// Marked for removal once both sides have attached, so it cannot outlive us.
	defer unix.SysvShmCtl(shmid, unix.IPC_RMID, nil)
	data, err := unix.SysvShmAttach(shmid, 0, 0)
	if err != nil {
		return xshmSeg{}, fmt.Errorf("attaching shared memory: %w", err)
	}
	seg, err := shm.NewSegId(conn)
	if err == nil {
		err = shm.AttachChecked(conn, seg, uint32(shmid), false).Check()
	}
	if err != nil {
		_ = unix.SysvShmDetach(data)
		return xshmSeg{}, fmt.Errorf("attaching shared memory to the X server: %w", err)
	}
	return xshmSeg{id: seg, data: data}, nil
}

func (g *xshmGrabber) Grab() (Pixels, error) {
	s := g.segs[g.next]
	g.next ^= 1
	_, err := shm.GetImage(g.conn, g.root, int16(g.rect.Min.X), int16(g.rect.Min.Y),
		uint16(g.rect.Dx()), uint16(g.rect.Dy()), 0xffffffff, xproto.ImageFormatZPixmap, s.id, 0).Reply()
	if err != nil {
		return Pixels{}, fmt.Errorf("grabbing screen: %w", err)
	}
	return Pixels{Pix: s.data, Width: g.rect.Dx(), Height: g.rect.Dy(), Stride: g.rect.Dx() * 4, Format: BGRX}, nil
}

func (g *xshmGrabber) Close() error {
	for _, s := range g.segs {
		if s.data != nil {
			shm.Detach(g.conn, s.id)
			_ = unix.SysvShmDetach(s.data)
		}
	}
	g.conn.Close()
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
func Monitors() ([]Monitor, error) {
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
	if xinerama.Init(conn) == nil {
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

// shmOnce guards the one shm.Init that may touch xgb's process-wide event
// tables: shm.Init writes them on every call, while every other open
// connection's reader (the input injector's, say) reads them, which the
// race detector rightly flags and which can crash with a concurrent map
// write. We read no MIT-SHM events, so registering them once is enough.
var shmOnce sync.Once

// initShm makes MIT-SHM requests usable on conn.
func initShm(conn *xgb.Conn) error {
	var err error
	first := false
	shmOnce.Do(func() { first = true; err = shm.Init(conn) })
	if first {
		return err
	}
	const name = "MIT-SHM"
	reply, err := xproto.QueryExtension(conn, uint16(len(name)), name).Reply()
	switch {
	case err != nil:
		return err
	case !reply.Present:
		return errors.New("the X server has no MIT-SHM extension")
	}
	conn.ExtLock.Lock()
	conn.Extensions[name] = reply.MajorOpcode
	conn.ExtLock.Unlock()
	return nil
}
