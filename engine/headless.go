package engine

import (
	"context"
	"fmt"
	"io"
)

// RunHeadless starts sharing, prints the viewer URLs to w, one line each, and
// serves until ctx ends; then it closes every stream and returns.
func (e *Engine) RunHeadless(ctx context.Context, w io.Writer) error {
	if err := e.Start(); err != nil {
		return err
	}
	defer e.Stop()
	for _, u := range e.Server().ViewerURLs() {
		fmt.Fprintf(w, "viewer: %s\n", u.URL)
	}
	<-ctx.Done()
	return nil
}
