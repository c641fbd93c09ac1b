package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/internal/termqr"
)

// RunHeadless starts sharing, prints the viewer URLs to w, one line each, then
// the first of them (a LAN one, when it listens on every interface) as a QR code
// of half blocks, and serves until ctx ends; then it closes every stream and
// returns.
func (e *Engine) RunHeadless(ctx context.Context, w io.Writer) error {
	if err := e.Start(); err != nil {
		return err
	}
	defer e.Stop()
	srv := e.Server()
	if wanted := srv.PortMoved(); wanted != 0 {
		fmt.Fprintf(w, "port: %d is busy, so this share uses port %d\n", wanted, srv.Port())
	}
	urls := srv.ViewerURLs()
	for _, u := range urls {
		fmt.Fprintf(w, "viewer: %s\n", u.URL)
	}
	if len(urls) > 0 {
		// The same URL as the window's QR code. Black on white when w is a
		// terminal, whatever its theme; plain half blocks into a file or pipe.
		if qr, err := termqr.Render(urls[0].URL, termqr.StyleFor(w)); err != nil {
			e.log.Warn("no QR code for the viewer URL", "err", err)
		} else {
			fmt.Fprint(w, qr)
		}
	}
	if a := srv.Access(); a.Approve != access.ApproveOff {
		base := fmt.Sprintf("http://127.0.0.1:%d/api/viewers", srv.Port())
		fmt.Fprintf(w, "approve: viewers wait up to %s; list them with  curl '%s?t=%s'  and let one in with  "+
			"curl -X POST '%s/ID/allow?t=%s'\n", a.ApproveTimeout, base, srv.Token(), base, srv.Token())
	}
	if why := srv.Status().Control.Unavailable; why != "" && e.Settings().Control != access.ControlOff {
		fmt.Fprintf(w, "control: not available here: %s\n", why)
	} else if m := srv.ControlMode(); m == access.ControlGrant {
		fmt.Fprintf(w, "control: on; give it to a viewer with  curl -X POST 'http://127.0.0.1:%d/api/viewers/ID/control?t=%s'"+
			"  and take it back with .../ID/revoke\n", srv.Port(), srv.Token())
	} else if m == access.ControlAll {
		fmt.Fprintln(w, "control: every viewer may drive this desktop")
	}
	if p := srv.Publishing(); p != nil {
		// The LAN's access rules are the share's; the media server's viewers are under its own.
		fmt.Fprintf(w, "publish: to %s (its own rules decide who watches there", p.URL)
		if p.View != "" {
			fmt.Fprintf(w, "; viewers: %s", p.View)
		}
		fmt.Fprintf(w, "); its state in  curl 'http://127.0.0.1:%d/api/status?t=%s'\n", srv.Port(), srv.Token())
	}
	if capture.UsesPortal() {
		fmt.Fprintln(w, "screen: through the desktop's screen-sharing portal (Wayland); it may ask which screen to share")
	}
	// The portal's state as it changes: its dialog waiting, a refusal, the end.
	said := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.Changes():
			if s := e.portal.Status(); s != said {
				said = s
				if s != "" {
					fmt.Fprintf(w, "screen: %s\n", s)
				}
			}
		}
	}
}
