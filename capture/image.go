package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/deskcast/deskcast/media"
)

// grabber captures one fixed rectangle of the screen over and over.
type grabber interface {
	// Grab captures the rectangle into a picture holding one reference,
	// which the caller releases. Pictures stay intact while referenced,
	// whatever grabs come after, and even after Close.
	Grab() (*media.Picture, error)
	Close() error
}

// changeNotifier is a grabber that the platform tells when its rectangle is
// drawn on (XDamage on X11), so that Run grabs as soon as the screen changes
// and not at all while it is still, instead of polling at the frame rate.
type changeNotifier interface {
	// Changes returns a channel that receives, soon after something was
	// drawn on the grabbed rectangle, the time the grabber heard of it; a
	// notice that finds one pending is dropped (the earlier time stands). A
	// change drawn before a Grab starts is in that grab's picture. Changes
	// returns nil when the grabber cannot tell after all, and Run polls.
	Changes() <-chan time.Time
}

// sameFrame reports whether a and b hold the same picture. It compares every
// 16th row first, since a change on screen usually spans several rows and is
// found sooner that way, then the rest.
func sameFrame(a, b *media.Picture) bool {
	if a == nil || b == nil || a.Width != b.Width || a.Height != b.Height || a.Format != b.Format || len(a.Pix) == 0 || len(b.Pix) == 0 {
		return false
	}
	rowLen := a.Width * 4
	const step = 16
	for pass := 0; pass < step; pass++ {
		for y := pass; y < a.Height; y += step {
			ra := a.Pix[y*a.Stride : y*a.Stride+rowLen]
			rb := b.Pix[y*b.Stride : y*b.Stride+rowLen]
			if !bytes.Equal(ra, rb) {
				return false
			}
		}
	}
	return true
}

// ParseRegion parses "x,y,w,h" into a rectangle relative to the monitor.
func ParseRegion(s string) (image.Rectangle, error) {
	var x, y, w, h int
	n, err := fmt.Sscanf(s, "%d,%d,%d,%d", &x, &y, &w, &h)
	if err != nil || n != 4 {
		return image.Rectangle{}, fmt.Errorf("region %q: want x,y,w,h in pixels", s)
	}
	if x < 0 || y < 0 || w < 16 || h < 16 {
		return image.Rectangle{}, fmt.Errorf("region %q: x and y must be >= 0, w and h >= 16", s)
	}
	return image.Rect(x, y, x+w, y+h), nil
}

// ErrNoMonitor is returned for a monitor number the system does not have.
var ErrNoMonitor = errors.New("no such monitor")

// ErrRegion is returned for a region that does not fit on its monitor.
var ErrRegion = errors.New("region does not fit the monitor")

// errNoDisplay is returned when there is no screen to capture at all.
var errNoDisplay = errors.New("no display found (is a desktop session running, is DISPLAY set?)")

// PortalMonitor names the one monitor Monitors lists on a Wayland session,
// where the desktop's dialog chooses it.
const PortalMonitor = "the screen chosen in the system dialog"

// Monitor is one display that can be shared.
type Monitor struct {
	Index   int             // 0-based; shown to people 1-based
	Bounds  image.Rectangle // in desktop coordinates
	Primary bool
}

// String names the monitor as menus show it, e.g. "1: 1920×1080 (primary)".
// A monitor without bounds is the one the desktop's own dialog chooses
// (Wayland).
func (m Monitor) String() string {
	if m.Bounds.Empty() {
		return fmt.Sprintf("%d: %s", m.Index+1, PortalMonitor)
	}
	s := fmt.Sprintf("%d: %d×%d", m.Index+1, m.Bounds.Dx(), m.Bounds.Dy())
	if m.Primary {
		s += " (primary)"
	}
	return s
}

// regionOf places region (relative to mon, empty for all of it) on the screen.
func regionOf(mon, region image.Rectangle) (image.Rectangle, error) {
	if region.Empty() {
		return mon, nil
	}
	r := region.Add(mon.Min)
	if !r.In(mon) {
		return image.Rectangle{}, fmt.Errorf("%d,%d,%d,%d: %w of %dx%d",
			region.Min.X, region.Min.Y, region.Dx(), region.Dy(), ErrRegion, mon.Dx(), mon.Dy())
	}
	return r, nil
}
