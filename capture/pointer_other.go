//go:build !linux

package capture

import (
	"context"
	"log/slog"

	"github.com/deskcast/deskcast/media"
)

// Run reports the pointer as hidden and waits for ctx: showing the pointer
// is done on X11 only so far (Windows would use GetCursorInfo and DrawIconEx,
// macOS the capture API's cursor).
func (p *Pointer) Run(ctx context.Context, emit func(*media.Pointer)) error {
	slog.Info("the pointer is not shown", "reason", ErrPointerUnsupported)
	emit(&media.Pointer{})
	<-ctx.Done()
	return nil
}
