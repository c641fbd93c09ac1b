package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/deskcast/deskcast/access"
)

// RunHeadless starts sharing, prints the viewer URLs to w, one line each, and
// serves until ctx ends; then it closes every stream and returns.
func (e *Engine) RunHeadless(ctx context.Context, w io.Writer) error {
	if err := e.Start(); err != nil {
		return err
	}
	defer e.Stop()
	srv := e.Server()
	if wanted := srv.PortMoved(); wanted != 0 {
		fmt.Fprintf(w, "port: %d is busy, so this share uses port %d\n", wanted, srv.Port())
	}
	for _, u := range srv.ViewerURLs() {
		fmt.Fprintf(w, "viewer: %s\n", u.URL)
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
	<-ctx.Done()
	return nil
}
