package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"time"

	"github.com/deskcast/deskcast/media"
)

// ErrPointerUnsupported says the platform gives no pointer to show: the
// pointer source then reports the pointer as hidden.
var ErrPointerUnsupported = errors.New("showing the pointer is not supported on this platform")

// PointerConfig says whose pointer to follow and how often to look.
type PointerConfig struct {
	Monitor int             // 0-based monitor index, as ScreenConfig
	Region  image.Rectangle // relative to the monitor; empty means all of it
	Rate    int             // position polls a second (60 when 0)
	// Portal is the screen's portal state on a Wayland session: the
	// pointer comes from its stream's cursor metadata.
	Portal *Portal
}

// Pointer follows the presenter's mouse pointer over the shared monitor or
// region. Run emits a *media.Pointer whenever it moves, changes shape or
// shows or hides; it looks only while it runs (a hub runs it while somebody
// watches). On X11 it uses XFixes for the shape (a CursorNotify event for
// each change, then GetCursorImage) and polls QueryPointer for the position;
// elsewhere it reports the pointer as hidden.
type Pointer struct {
	cfg PointerConfig
}

// NewPointer checks cfg and returns a pointer source for it.
func NewPointer(cfg PointerConfig) (*Pointer, error) {
	if cfg.Monitor < 0 {
		return nil, fmt.Errorf("monitor %d: %w", cfg.Monitor+1, ErrNoMonitor)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 60
	}
	if cfg.Rate < 1 || cfg.Rate > 250 {
		return nil, fmt.Errorf("pointer rate %d: want 1 to 250", cfg.Rate)
	}
	return &Pointer{cfg: cfg}, nil
}

func (p *Pointer) interval() time.Duration { return time.Second / time.Duration(p.cfg.Rate) }

// PointerFraction maps a screen pixel to fractions of the shared rectangle,
// measured at the pixel's centre, so that the remote-control mapping (a
// fraction f lands on pixel Min + floor(f × size)) takes it back to the same
// pixel. inside reports whether the pixel is in the rectangle.
func PointerFraction(rect image.Rectangle, x, y int) (fx, fy float64, inside bool) {
	if rect.Empty() {
		return 0, 0, false
	}
	fx = (float64(x-rect.Min.X) + 0.5) / float64(rect.Dx())
	fy = (float64(y-rect.Min.Y) + 0.5) / float64(rect.Dy())
	return fx, fy, image.Pt(x, y).In(rect)
}

// newPointerShape builds a shape from premultiplied ARGB words (X's cursor
// image layout), keeping premultiplied RGBA for drawing into frames and a
// PNG for the page. A shape with no opaque pixel is reported as nil: the
// desktop hid the pointer behind a blank cursor.
func newPointerShape(argb []uint32, w, h, hotX, hotY int, serial uint32) (*media.PointerShape, error) {
	if w <= 0 || h <= 0 || len(argb) < w*h {
		return nil, fmt.Errorf("pointer image %d×%d with %d pixels", w, h, len(argb))
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seen := false
	for i, v := range argb[:w*h] {
		a := byte(v >> 24)
		if a != 0 {
			seen = true
		}
		img.Pix[4*i] = byte(v >> 16)
		img.Pix[4*i+1] = byte(v >> 8)
		img.Pix[4*i+2] = byte(v)
		img.Pix[4*i+3] = a
	}
	if !seen {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding the pointer image: %w", err)
	}
	return &media.PointerShape{RGBA: img.Pix, PNG: buf.Bytes(), W: w, H: h, HotX: hotX, HotY: hotY, Serial: serial}, nil
}

// pointerState is what the source last emitted, to emit only changes.
type pointerState struct {
	x, y    int
	visible bool
	shape   *media.PointerShape
	emitted bool
}

// next returns the pointer to emit for the pointer at screen pixel (x, y)
// with shape (nil when hidden), or nil when nothing changed since the last.
func (st *pointerState) next(rect image.Rectangle, x, y int, shape *media.PointerShape) *media.Pointer {
	fx, fy, inside := PointerFraction(rect, x, y)
	visible := inside && shape != nil
	if st.emitted && st.visible == visible && st.shape == shape && (!visible || (st.x == x && st.y == y)) {
		return nil
	}
	st.x, st.y, st.visible, st.shape, st.emitted = x, y, visible, shape, true
	return &media.Pointer{X: fx, Y: fy, Visible: visible, Shape: shape, AreaW: rect.Dx(), AreaH: rect.Dy()}
}
