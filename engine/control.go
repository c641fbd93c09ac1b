package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/input"
	"github.com/deskcast/deskcast/web"
)

// injector carries viewers' input to the shared part of the desktop: it maps
// the page's fractions onto the shared rectangle, whatever the page's size
// or the stream's downscale, and opens the desktop's input on first use.
//
// Opening may wait for the presenter in the desktop's dialog (Wayland): it
// runs outside mu, one at a time (opening), so that ReleaseAll and the
// engine never wait for the dialog, and ends when the share stops (ctx).
type injector struct {
	ctx     context.Context // ends when the share stops: an open waiting for the dialog gives up
	stop    context.CancelFunc
	opening chan struct{} // a value while an open runs

	mu   sync.Mutex
	in   *input.Injector
	rect image.Rectangle // the shared monitor or region, in screen pixels
	// region is the shared region on Wayland, where rect is empty: the
	// screen is the desktop's remote-desktop session's (input's Area).
	region image.Rectangle
}

func newInjector() *injector {
	ctx, stop := context.WithCancel(context.Background())
	return &injector{ctx: ctx, stop: stop, opening: make(chan struct{}, 1)}
}

// errNoArea: the picture has no place on the desktop yet.
var errNoArea = errors.New("no shared area to control")

var _ web.Injector = (*injector)(nil)

// sharedRect is the monitor or region s shares, in screen pixels; empty on
// Wayland, where the screen is the one the desktop's dialog chose.
func sharedRect(s Settings) (image.Rectangle, error) {
	if capture.UsesPortal() {
		return image.Rectangle{}, nil
	}
	ms, err := capture.Monitors()
	if err != nil {
		return image.Rectangle{}, err
	}
	if s.Monitor < 0 || s.Monitor >= len(ms) {
		return image.Rectangle{}, fmt.Errorf("monitor %d: %w", s.Monitor+1, capture.ErrNoMonitor)
	}
	mon := ms[s.Monitor].Bounds
	if s.Region.Empty() {
		return mon, nil
	}
	r := s.Region.Add(mon.Min)
	if !r.In(mon) {
		return image.Rectangle{}, capture.ErrRegion
	}
	return r, nil
}

func (j *injector) setRect(r, region image.Rectangle) {
	j.mu.Lock()
	j.rect, j.region = r, region
	j.mu.Unlock()
}

// input returns the open desktop input, opening it if need be (outside
// j.mu: on Wayland the desktop's dialog waits for the presenter first).
func (j *injector) input() (*input.Injector, error) {
	j.mu.Lock()
	in := j.in
	j.mu.Unlock()
	if in != nil {
		return in, nil
	}
	select {
	case j.opening <- struct{}{}:
		defer func() { <-j.opening }()
	case <-j.ctx.Done():
		return nil, j.ctx.Err()
	}
	j.mu.Lock()
	in = j.in // opened while this one waited its turn
	j.mu.Unlock()
	if in != nil {
		return in, nil
	}
	in, err := input.OpenContext(j.ctx)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ctx.Err() != nil { // the share stopped meanwhile
		_ = in.Close()
		return nil, j.ctx.Err()
	}
	j.in = in
	return in, nil
}

func (j *injector) do(f func(*input.Injector) error) error {
	in, err := j.input()
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.in != in {
		return errors.New("the desktop's input was closed")
	}
	if err := f(in); err != nil {
		if errors.Is(err, input.ErrInvalid) || errors.Is(err, errNoArea) {
			return err // refused before anything was sent: the input is fine
		}
		// The connection may be dead (the X server restarted, the desktop
		// ended the session): start over with a new one at the next event
		// rather than fail for ever.
		_ = in.Close()
		j.in = nil
		return err
	}
	return nil
}

// point maps fractions of the picture to a screen pixel inside the
// rectangle: the shared one, or on Wayland the region of the input's area.
func (j *injector) point(in *input.Injector, x, y float64) (int, int, error) {
	r := j.rect
	if r.Empty() {
		if a := in.Area(); !a.Empty() {
			r = a
			if !j.region.Empty() {
				r = j.region.Add(a.Min).Intersect(a)
			}
		}
	}
	if r.Empty() {
		return 0, 0, errNoArea
	}
	px := r.Min.X + min(int(x*float64(r.Dx())), r.Dx()-1)
	py := r.Min.Y + min(int(y*float64(r.Dy())), r.Dy()-1)
	return px, py, nil
}

func (j *injector) Move(x, y float64) error {
	return j.do(func(in *input.Injector) error {
		px, py, err := j.point(in, x, y)
		if err != nil {
			return err
		}
		return in.Move(px, py)
	})
}

// domButtons maps the DOM's button numbers to the desktop's.
var domButtons = [...]input.MouseButton{input.ButtonLeft, input.ButtonMiddle, input.ButtonRight}

func (j *injector) Button(b int, down bool) error {
	if b < 0 || b >= len(domButtons) {
		return fmt.Errorf("mouse button %d: want 0, 1 or 2", b)
	}
	return j.do(func(in *input.Injector) error { return in.Button(domButtons[b], down) })
}

func (j *injector) Scroll(dx, dy int) error {
	return j.do(func(in *input.Injector) error { return in.Scroll(dx, dy) })
}

func (j *injector) Key(name string, down bool) error {
	return j.do(func(in *input.Injector) error { return in.Key(input.Key(name), down) })
}

// warm opens the desktop's input now; a failure is tried again at the
// first event.
func (j *injector) warm() {
	_ = j.do(func(*input.Injector) error { return nil })
}

func (j *injector) Text(s string) error {
	return j.do(func(in *input.Injector) error { return in.Type(s) })
}

// ReleaseAll lets go of whatever the viewers held. On X11 it closes the
// desktop input (the next event opens it again, with the keyboard mapping
// read anew); on Wayland it keeps the remote-desktop session, as a new one
// would mean the desktop's dialog again.
func (j *injector) ReleaseAll() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.in == nil {
		return nil
	}
	if capture.UsesPortal() {
		return j.in.ReleaseHeld()
	}
	err := j.in.Close()
	j.in = nil
	return err
}

// close ends the share's control: an open waiting for the dialog gives up,
// and what is open is released and closed.
func (j *injector) close() error {
	j.stop()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.in == nil {
		return nil
	}
	err := j.in.Close()
	j.in = nil
	return err
}

// SetControl turns remote control on (access.ControlGrant: for the viewer
// the presenter grants it to; access.ControlAll: for every viewer) or off.
// It fails, saying why, where this desktop cannot take injected input
// (a Wayland session, no XTEST).
func (e *Engine) SetControl(mode access.ControlMode) error {
	if _, err := access.ParseControlMode(string(mode)); err != nil {
		return err
	}
	if mode != access.ControlOff {
		if err := input.Available(); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.changed()
	if e.share == nil {
		e.settings.Control = mode
		return nil
	}
	return e.setControlLocked(mode)
}

// applyControlLocked gives a new share the control mode of the settings.
func (e *Engine) applyControlLocked() error {
	if e.share == nil || e.settings.Control == access.ControlOff {
		return nil
	}
	return e.setControlLocked(e.settings.Control)
}

// setControlLocked sets the running share's control mode.
func (e *Engine) setControlLocked(mode access.ControlMode) error {
	srv := e.share.srv
	if mode == access.ControlOff {
		err := srv.SetControl(access.ControlOff, nil)
		if e.inj != nil && capture.UsesPortal() {
			// Nothing is kept open on Wayland with control off: the
			// desktop shows its remote-desktop indicator while it is.
			go e.inj.close()
			e.inj = nil
		}
		return err
	}
	if e.inj == nil {
		e.inj = newInjector()
	}
	r, err := sharedRect(e.settings)
	if err != nil {
		return fmt.Errorf("remote control: %w", err)
	}
	e.inj.setRect(r, e.settings.Region)
	if err := srv.SetControl(mode, e.inj); err != nil {
		return err
	}
	if capture.UsesPortal() {
		// The desktop asks in its dialog: now, while the presenter is at
		// it, rather than at a viewer's first move.
		go e.inj.warm()
	}
	return nil
}

// Grant gives remote control to the viewer id (taking it from anyone else).
func (e *Engine) Grant(id string) error { return e.onViewer(id, (*web.Server).Grant) }

// Revoke takes remote control back from the viewer id, or from everyone for "".
func (e *Engine) Revoke(id string) {
	if srv := e.Server(); srv != nil {
		_ = srv.Revoke(id) // fails only for a viewer gone from the list: nothing to take back
	}
}
