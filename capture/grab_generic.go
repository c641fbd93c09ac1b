package capture

import (
	"fmt"
	"image"
	"log/slog"

	"github.com/kbinani/screenshot"
)

// genericGrabber captures through kbinani/screenshot, which works on every
// platform but allocates a new image (and on Linux opens a connection) per call.
type genericGrabber struct {
	rect image.Rectangle
}

func newGenericGrabber(monitor int, region image.Rectangle, why error) (grabber, error) {
	n := screenshot.NumActiveDisplays()
	if n == 0 {
		if why != nil {
			return nil, fmt.Errorf("%w; %w", errNoDisplay, why)
		}
		return nil, errNoDisplay
	}
	if monitor < 0 || monitor >= n {
		return nil, fmt.Errorf("monitor %d: %w (have %d)", monitor+1, ErrNoMonitor, n)
	}
	// kbinani's coordinates are relative to the primary monitor, as are its captures.
	r, err := regionOf(screenshot.GetDisplayBounds(monitor), region)
	if err != nil {
		return nil, err
	}
	if why != nil {
		slog.Info("using the portable screen grabber", "reason", why)
	}
	return &genericGrabber{rect: r}, nil
}

func (g *genericGrabber) Grab() (Pixels, error) {
	img, err := screenshot.CaptureRect(g.rect)
	if err != nil {
		return Pixels{}, fmt.Errorf("grabbing screen: %w", err)
	}
	return Pixels{Pix: img.Pix, Width: img.Rect.Dx(), Height: img.Rect.Dy(), Stride: img.Stride, Format: RGBA}, nil
}

func (g *genericGrabber) Close() error { return nil }
