// Package capture grabs the screen (a monitor or part of one) as raw pictures.
package capture

import (
	"context"
	"fmt"
	"image"
	"time"

	"github.com/deskcast/deskcast/media"
)

// ScreenConfig says what to capture and how.
type ScreenConfig struct {
	Monitor  int             // 0-based monitor index
	Region   image.Rectangle // relative to the monitor; empty means all of it
	FPS      int             // capture rate, frames per second
	MaxWidth int             // downscale wider frames to this width; 0 keeps the size
}

// Validate reports the first setting that is out of range.
func (c ScreenConfig) Validate() error {
	switch {
	case c.Monitor < 0:
		return fmt.Errorf("monitor %d: %w", c.Monitor+1, ErrNoMonitor)
	case c.FPS < 1 || c.FPS > 120:
		return fmt.Errorf("fps %d: want 1 to 120", c.FPS)
	case c.MaxWidth != 0 && c.MaxWidth < 16:
		return fmt.Errorf("max width %d: want 0 (no limit) or at least 16", c.MaxWidth)
	}
	return nil
}

// Screen captures a monitor (or part of one) at a steady rate.
type Screen struct {
	cfg ScreenConfig
	// open is the grabber constructor; tests replace it to feed known pixels.
	open func(monitor int, region image.Rectangle) (grabber, error)
}

// NewScreen checks cfg and returns a source for it. Nothing is captured until Run.
func NewScreen(cfg ScreenConfig) (*Screen, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Screen{cfg: cfg, open: newPlatformGrabber}, nil
}

// Run captures until ctx ends, calling emit with each picture that differs
// from the one before (the first picture always), scaled to MaxWidth. emit's
// receiver owns the picture's one reference and releases it when done; Run
// waits for nothing. Run returns nil when ctx ends and an error when the
// screen cannot be captured.
func (s *Screen) Run(ctx context.Context, emit func(*media.Picture)) error {
	g, err := s.open(s.cfg.Monitor, s.cfg.Region)
	if err != nil {
		return fmt.Errorf("starting screen capture: %w", err)
	}
	defer g.Close()

	tick := time.NewTicker(time.Second / time.Duration(s.cfg.FPS))
	defer tick.Stop()
	var (
		prev *media.Picture // our reference to the last raw grab, to compare with
		sc   scaler
	)
	defer func() {
		if prev != nil {
			prev.Release()
		}
	}()
	for {
		t0 := time.Now()
		px, err := g.Grab()
		if err != nil {
			return err
		}
		px.Captured, px.Grab = t0, time.Since(t0)
		changed := !sameFrame(px, prev)
		if prev != nil {
			prev.Release()
		}
		prev = px
		if changed {
			out := px
			if w, h := scaledSize(px.Width, px.Height, s.cfg.MaxWidth); w != px.Width {
				out = sc.scale(px, w, h)
				out.Captured, out.Grab = t0, time.Since(t0)
			} else {
				out.Retain() // emit's reference; prev keeps ours
			}
			emit(out)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
