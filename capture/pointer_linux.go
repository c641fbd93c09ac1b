//go:build linux

package capture

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"

	"github.com/deskcast/deskcast/media"
)

// Run follows the pointer until ctx ends: it polls QueryPointer at the
// configured rate and emits only changes; XFixes tells it when the shape
// changes, and GetCursorImage fetches the new one. It returns an error when
// the X server cannot be reached or goes away (a hub retries); on a server
// without XFixes it reports the pointer as hidden and waits.
//
// On a Wayland session it follows the pointer the compositor reports beside
// the screen's frames instead (the portal's cursor metadata), while the
// screen is captured.
func (p *Pointer) Run(ctx context.Context, emit func(*media.Pointer)) error {
	if UsesPortal() {
		return p.runPortal(ctx, emit)
	}
	conn, err := xgb.NewConn()
	if err != nil {
		return fmt.Errorf("connecting to X server: %w", err)
	}
	defer conn.Close()
	root := xproto.Setup(conn).DefaultScreen(conn).Root
	mon, err := monitorRect(conn, p.cfg.Monitor)
	if err != nil {
		return err
	}
	rect, err := regionOf(mon, p.cfg.Region)
	if err != nil {
		return err
	}
	events, err := initXFixes(conn, root)
	if err != nil {
		slog.Info("the pointer is not shown", "reason", err)
		emit(&media.Pointer{AreaW: rect.Dx(), AreaH: rect.Dy()})
		<-ctx.Done()
		return nil
	}
	shape, err := cursorShape(conn)
	if err != nil {
		return err
	}
	var st pointerState
	tick := time.NewTicker(p.interval())
	defer tick.Stop()
	for n := 0; ; n++ {
		q, err := xproto.QueryPointer(conn, root).Reply()
		if err != nil {
			return fmt.Errorf("reading the pointer: %w", err)
		}
		// Shape changes come as events, read here so that xgb's queue never fills.
		// Without its events (see initXFixes) the shape is fetched ten times a second.
		changed := !events && n%max(1, p.cfg.Rate/10) == 0 && n > 0
		for {
			ev, xerr := conn.PollForEvent()
			if ev == nil && xerr == nil {
				break
			}
			if _, ok := ev.(xfixes.CursorNotifyEvent); ok {
				changed = true
			}
		}
		if changed {
			next, err := cursorShape(conn)
			if err != nil {
				return err
			}
			if next == nil || shape == nil || next.Serial != shape.Serial {
				shape = next // the same serial is the same image: keep the one viewers have
			}
		}
		x, y := int(q.RootX), int(q.RootY)
		if !q.SameScreen {
			x, y = -1, -1 // on another X screen: not on ours
		}
		if ptr := st.next(rect, x, y, shape); ptr != nil {
			emit(ptr)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// runPortal emits the portal stream's pointer as it changes. Without a
// Portal (or where the desktop draws the pointer into the frames) nothing
// comes, and the pointer is not shown over the picture.
func (p *Pointer) runPortal(ctx context.Context, emit func(*media.Pointer)) error {
	if p.cfg.Portal == nil {
		<-ctx.Done()
		return nil
	}
	var st pointerState
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.cfg.Portal.cursorNew:
		}
		c := p.cfg.Portal.latestCursor()
		if ptr := st.next(c.rect, c.x, c.y, c.shape); ptr != nil {
			emit(ptr)
		}
	}
}

// initXFixes makes XFixes requests usable on conn, agrees on its version
// (GetCursorImage needs 1, cursor events 2) and asks for an event whenever
// the displayed cursor changes. events says whether they can be read.
func initXFixes(conn *xgb.Conn, root xproto.Window) (events bool, err error) {
	first, registered, err := initExt(conn, "XFIXES", xfixes.Init)
	if err != nil {
		return false, fmt.Errorf("XFIXES extension: %w", err)
	}
	if _, err := xfixes.QueryVersion(conn, 4, 0).Reply(); err != nil {
		return false, fmt.Errorf("XFIXES extension version: %w", err)
	}
	if first != registered {
		return false, nil
	}
	if err := xfixes.SelectCursorInputChecked(conn, root, xfixes.CursorNotifyMaskDisplayCursor).Check(); err != nil {
		return false, fmt.Errorf("watching the pointer's shape: %w", err)
	}
	return true, nil
}

// cursorShape fetches the displayed cursor's image; nil when it is blank.
func cursorShape(conn *xgb.Conn) (*media.PointerShape, error) {
	r, err := xfixes.GetCursorImage(conn).Reply()
	if err != nil {
		return nil, fmt.Errorf("reading the pointer's image: %w", err)
	}
	if r.Width == 0 || r.Height == 0 {
		return nil, nil
	}
	return newPointerShape(r.CursorImage, int(r.Width), int(r.Height), int(r.Xhot), int(r.Yhot), r.CursorSerial)
}
