package testenv

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"
)

// busyVideoFrames is how many pictures the video in the corner loops through.
const busyVideoFrames = 30

// Busy paints a busy desktop at work on an X screen 30 times a second, as
// Moving does for the encoders' tests: the Desktop, a window dragged across
// it (12 px right and 6 down a frame, back and forth) and a video playing in
// a corner, plus a marker square whose colour the test sets (for
// glass-to-glass latency). The pictures are held in pixmaps of the X server,
// so each frame is a few copies inside the server: the painter costs the
// test almost nothing, and each frame appears at once (under a server grab),
// never half drawn. Busy keeps when it painted what, so a test can work out
// the picture a received frame shows (Screen).
type Busy struct {
	x          *X
	gc         xproto.Gcontext
	base, win  xproto.Pixmap // the desktop, the window
	video      xproto.Pixmap // busyVideoFrames pictures, one above the other
	baseImg    *image.RGBA
	winImg     *image.RGBA
	videoImgs  []*image.RGBA
	videoRect  image.Rectangle
	Marker     image.Rectangle // where the marker is painted
	mu         sync.Mutex
	states     []BusyState
	frame      int // the motion's frame number
	marker     color.RGBA
	moving     bool
	done, quit chan struct{}
}

// BusyState is one picture Busy painted: when it was on the screen (from
// the moment the X server had drawn it) and what it showed.
type BusyState struct {
	At     time.Time
	Frame  int
	Marker color.RGBA
}

// StartBusy uploads the pictures of desktop seed and starts painting; the
// painter stops when the test ends.
func (x *X) StartBusy(t testing.TB, seed uint64) *Busy {
	t.Helper()
	w, h := x.Width, x.Height
	b := &Busy{x: x, baseImg: Desktop(w, h, seed), winImg: Desktop(w*5/12, h*5/9, seed+1),
		videoRect: image.Rect(w*2/3, h/10, w*2/3+w/4, h/10+h/4),
		Marker:    image.Rect(w/2-100, h/2-100, w/2+100, h/2+100),
		marker:    color.RGBA{255, 255, 255, 255}, moving: true,
		done: make(chan struct{}), quit: make(chan struct{})}
	for i := range busyVideoFrames {
		b.videoImgs = append(b.videoImgs, busyVideo(b.videoRect, i))
	}
	var err error
	if b.gc, err = xproto.NewGcontextId(x.conn); err != nil {
		t.Fatal(err)
	}
	// No GraphicsExposure events: nobody reads them, and xgb stalls once
	// its event queue is full.
	if err := xproto.CreateGCChecked(x.conn, b.gc, xproto.Drawable(x.root), xproto.GcGraphicsExposures, []uint32{0}).Check(); err != nil {
		t.Fatalf("creating GC: %v", err)
	}
	vr := b.videoRect
	strip := image.NewRGBA(image.Rect(0, 0, vr.Dx(), vr.Dy()*busyVideoFrames))
	for i, v := range b.videoImgs {
		copy(strip.Pix[i*vr.Dy()*strip.Stride:], v.Pix)
	}
	for _, p := range []struct {
		pm  *xproto.Pixmap
		img *image.RGBA
	}{{&b.base, b.baseImg}, {&b.win, b.winImg}, {&b.video, strip}} {
		if *p.pm, err = x.pixmap(p.img); err != nil {
			t.Fatalf("uploading a picture to X: %v", err)
		}
	}
	if err := b.paint(); err != nil { // the whole desktop, under the first state
		t.Fatal(err)
	}
	go b.run()
	t.Cleanup(b.Stop)
	return b
}

// pixmap uploads img into a new pixmap of the root window's depth.
func (x *X) pixmap(img *image.RGBA) (xproto.Pixmap, error) {
	pm, err := xproto.NewPixmapId(x.conn)
	if err != nil {
		return 0, err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if err := xproto.CreatePixmapChecked(x.conn, 24, pm, xproto.Drawable(x.root), uint16(w), uint16(h)).Check(); err != nil {
		return 0, err
	}
	return pm, x.putImage(xproto.Drawable(pm), img)
}

// busyVideo is picture i of the video in the corner: colours that move
// without being a plain translation (Moving's pattern).
func busyVideo(r image.Rectangle, i int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := range r.Dy() {
		for x := range r.Dx() {
			fx, fy, ft := float64(x+r.Min.X), float64(y+r.Min.Y), float64(i)
			cr := 128 + 60*math.Sin(fx/23+ft/5) + 50*math.Sin(fy/31-ft/9)
			cg := 128 + 60*math.Sin(fy/19+ft/7) + 50*math.Sin((fx+fy)/41+ft/4)
			cb := 128 + 70*math.Sin((fx-fy)/29-ft/6) + 40*math.Sin(fx/13+ft/11)
			img.SetRGBA(x, y, color.RGBA{uint8(cr), uint8(cg), uint8(cb), 255})
		}
	}
	return img
}

// winAt is where the window is in frame i.
func (b *Busy) winAt(i int) image.Point {
	ww, wh := b.winImg.Rect.Dx(), b.winImg.Rect.Dy()
	span := b.x.Width - ww
	ox := (i * 12) % (2 * span)
	if ox > span {
		ox = 2*span - ox
	}
	return image.Pt(ox, (i*6)%(b.x.Height-wh))
}

func (b *Busy) run() {
	defer close(b.done)
	t := time.NewTicker(time.Second / 30)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
		}
		b.mu.Lock()
		if b.moving {
			b.frame++
			_ = b.paint()
		}
		b.mu.Unlock()
	}
}

// paint draws the current frame (with b.mu held, or before run starts) and
// records it: the window's old place from the desktop, the video, the
// window, the marker, all under one server grab.
func (b *Busy) paint() error {
	c := b.x.conn
	root := xproto.Drawable(b.x.root)
	xproto.GrabServer(c)
	if len(b.states) == 0 {
		xproto.CopyArea(c, xproto.Drawable(b.base), root, b.gc, 0, 0, 0, 0, uint16(b.x.Width), uint16(b.x.Height))
	} else {
		old := b.winAt(b.states[len(b.states)-1].Frame)
		xproto.CopyArea(c, xproto.Drawable(b.base), root, b.gc, int16(old.X), int16(old.Y), int16(old.X), int16(old.Y),
			uint16(b.winImg.Rect.Dx()), uint16(b.winImg.Rect.Dy()))
	}
	vr := b.videoRect
	xproto.CopyArea(c, xproto.Drawable(b.video), root, b.gc, 0, int16(b.frame%busyVideoFrames*vr.Dy()),
		int16(vr.Min.X), int16(vr.Min.Y), uint16(vr.Dx()), uint16(vr.Dy()))
	p := b.winAt(b.frame)
	xproto.CopyArea(c, xproto.Drawable(b.win), root, b.gc, 0, 0, int16(p.X), int16(p.Y),
		uint16(b.winImg.Rect.Dx()), uint16(b.winImg.Rect.Dy()))
	m := b.marker
	xproto.ChangeGC(c, b.gc, xproto.GcForeground, []uint32{uint32(m.R)<<16 | uint32(m.G)<<8 | uint32(m.B)})
	r := b.Marker
	xproto.PolyFillRectangle(c, root, b.gc, []xproto.Rectangle{{X: int16(r.Min.X), Y: int16(r.Min.Y), Width: uint16(r.Dx()), Height: uint16(r.Dy())}})
	xproto.UngrabServer(c)
	if err := b.x.Sync(); err != nil {
		return fmt.Errorf("painting the busy desktop: %w", err)
	}
	b.states = append(b.states, BusyState{At: time.Now(), Frame: b.frame, Marker: m})
	return nil
}

// Mark paints the marker in colour c now and returns when it was on the
// screen.
func (b *Busy) Mark(c color.RGBA) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.marker = c
	if err := b.paint(); err != nil {
		return time.Time{}, err
	}
	return b.states[len(b.states)-1].At, nil
}

// Move starts (true) or stops (false) the motion; a stopped screen stays as
// it is.
func (b *Busy) Move(on bool) {
	b.mu.Lock()
	b.moving = on
	b.mu.Unlock()
}

// States returns what was on the screen from just before from until to:
// the state showing at from, and every one painted after it up to to.
func (b *Busy) States(from, to time.Time) []BusyState {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.states), func(i int) bool { return b.states[i].At.After(from) })
	j := sort.Search(len(b.states), func(i int) bool { return b.states[i].At.After(to) })
	return append([]BusyState(nil), b.states[max(0, i-1):j]...)
}

// Screen returns the picture state s put on the screen.
func (b *Busy) Screen(s BusyState) *image.RGBA {
	img := image.NewRGBA(b.baseImg.Rect)
	copy(img.Pix, b.baseImg.Pix)
	put := func(src *image.RGBA, at image.Point) {
		w := src.Rect.Dx() * 4
		for y := range src.Rect.Dy() {
			copy(img.Pix[(at.Y+y)*img.Stride+at.X*4:][:w], src.Pix[y*src.Stride:])
		}
	}
	put(b.videoImgs[s.Frame%busyVideoFrames], b.videoRect.Min)
	put(b.winImg, b.winAt(s.Frame))
	for y := b.Marker.Min.Y; y < b.Marker.Max.Y; y++ {
		for x := b.Marker.Min.X; x < b.Marker.Max.X; x++ {
			img.SetRGBA(x, y, s.Marker)
		}
	}
	return img
}

// Stop stops the painter; the screen keeps its last picture. A second call
// does nothing.
func (b *Busy) Stop() {
	b.mu.Lock()
	select {
	case <-b.quit:
	default:
		close(b.quit)
	}
	b.mu.Unlock()
	<-b.done
}
