package capture

import (
	"fmt"
	"image"
	"log/slog"

	"github.com/kbinani/screenshot"

	"github.com/deskcast/deskcast/media"
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

// Grab returns the rectangle in fresh memory, which the garbage collector
// takes back.
func (g *genericGrabber) Grab() (*media.Picture, error) {
	img, err := screenshot.CaptureRect(g.rect)
	if err != nil {
		return nil, fmt.Errorf("grabbing screen: %w", err)
	}
	return media.NewPicture(img.Pix, img.Rect.Dx(), img.Rect.Dy(), img.Stride, media.RGBA, nil), nil
}

func (g *genericGrabber) Close() error { return nil }
