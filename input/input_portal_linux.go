//go:build linux

package input

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/deskcast/deskcast/capture/portal"
)

// portalSys injects input on a Wayland session through the desktop's
// RemoteDesktop portal: a session of its own, which the desktop grants in
// its dialog ("Allow remote interaction"), with a screen-cast stream that
// gives absolute pointer positions their space.
type portalSys struct {
	sess *portal.Session
}

// portalGrantTimeout bounds the wait for the presenter in the dialog.
const portalGrantTimeout = 5 * time.Minute

// Linux evdev codes of the mouse buttons (BTN_LEFT, BTN_MIDDLE, BTN_RIGHT).
var evdevButtons = map[MouseButton]int32{ButtonLeft: 0x110, ButtonMiddle: 0x112, ButtonRight: 0x111}

func openPortalSys(ctx context.Context) (*portalSys, error) {
	if err := portal.RemoteAvailable(); err != nil {
		return nil, fmt.Errorf("%w: this is a Wayland session, and %w", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, portalGrantTimeout)
	defer cancel()
	sess, err := portal.Open(ctx, portal.Options{Devices: portal.DeviceKeyboard | portal.DevicePointer})
	if err != nil {
		if errors.Is(err, portal.ErrCancelled) || errors.Is(err, portal.ErrDenied) {
			return nil, fmt.Errorf("%w: the desktop did not allow it: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("asking the desktop for remote control: %w", err)
	}
	if sess.Devices&(portal.DeviceKeyboard|portal.DevicePointer) == 0 {
		sess.Close()
		return nil, fmt.Errorf("%w: \"Allow remote interaction\" was left off in the system dialog", ErrUnavailable)
	}
	// mutter makes the session's virtual devices on their first events,
	// on its input thread, and drops what comes before they are ready: a
	// Shift tap and a pointer move by nothing now, and a moment for them,
	// so that no viewer's first move or key is lost.
	const keysymShiftL = 0xffe1
	_ = sess.Keysym(keysymShiftL, true)
	_ = sess.Keysym(keysymShiftL, false)
	_ = sess.MoveBy(0, 0)
	time.Sleep(devicesSettle)
	return &portalSys{sess: sess}, nil
}

// devicesSettle is how long a new session's virtual devices are given.
const devicesSettle = 500 * time.Millisecond

// area is the pointer's space: the session's stream, in logical pixels.
func (p *portalSys) area() image.Rectangle {
	if len(p.sess.Streams) == 0 {
		return image.Rectangle{}
	}
	st := p.sess.Streams[0]
	return image.Rectangle{Min: st.Position, Max: st.Position.Add(st.Size)}
}

func (p *portalSys) alive() error {
	select {
	case <-p.sess.Closed():
		return portal.ErrClosed
	default:
		return nil
	}
}

func (p *portalSys) move(x, y int) error {
	if err := p.alive(); err != nil {
		return err
	}
	a := p.area()
	return p.sess.MoveTo(float64(x-a.Min.X)+0.5, float64(y-a.Min.Y)+0.5)
}

func (p *portalSys) button(b MouseButton, down bool) error {
	if err := p.alive(); err != nil {
		return err
	}
	return p.sess.Button(evdevButtons[b], down)
}

func (p *portalSys) scroll(dx, dy int) error {
	if err := p.alive(); err != nil {
		return err
	}
	if dy != 0 {
		if err := p.sess.Scroll(0, int32(dy)); err != nil {
			return err
		}
	}
	if dx != 0 {
		return p.sess.Scroll(1, int32(dx))
	}
	return nil
}

func (p *portalSys) key(c keyCode, down bool) error {
	if err := p.alive(); err != nil {
		return err
	}
	return p.sess.Keysym(int32(c.x11), down)
}

// typeText presses and releases each character's keysym; the compositor
// finds its key and the Shift it needs in the current layout.
func (p *portalSys) typeText(text string) error {
	if err := p.alive(); err != nil {
		return err
	}
	for _, r := range text {
		sym := int32(runeKeysym(r))
		if err := p.sess.Keysym(sym, true); err != nil {
			return err
		}
		if err := p.sess.Keysym(sym, false); err != nil {
			return err
		}
	}
	return nil
}

func (p *portalSys) close() error { return p.sess.Close() }
