// Package capture grabs the screen and encodes it to JPEG, once per frame, for
// every viewer to share.
package capture

import (
	"context"
	"fmt"
	"image"
	"time"
)

// ScreenConfig says what to capture and how.
type ScreenConfig struct {
	Monitor  int             // 0-based monitor index
	Region   image.Rectangle // relative to the monitor; empty means all of it
	FPS      int             // capture rate, frames per second
	Quality  int             // JPEG quality, 1..100
	MaxWidth int             // downscale wider frames to this width; 0 keeps the size
}

// Validate reports the first setting that is out of range.
func (c ScreenConfig) Validate() error {
	switch {
	case c.Monitor < 0:
		return fmt.Errorf("monitor %d: %w", c.Monitor+1, ErrNoMonitor)
	case c.FPS < 1 || c.FPS > 120:
		return fmt.Errorf("fps %d: want 1 to 120", c.FPS)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("quality %d: want 1 to 100", c.Quality)
	case c.MaxWidth != 0 && c.MaxWidth < 16:
		return fmt.Errorf("max width %d: want 0 (no limit) or at least 16", c.MaxWidth)
	}
	return nil
}

// Frame is one encoded picture of the screen.
type Frame struct {
	JPEG     []byte
	Width    int
	Height   int
	Captured time.Time     // when the grab started
	Grab     time.Duration // time to grab the pixels
	Encode   time.Duration // time to scale and encode them
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

// Run captures until ctx ends, calling emit with each frame that differs from
// the one before (the first frame always). It returns nil when ctx ends and an
// error when the screen cannot be captured.
func (s *Screen) Run(ctx context.Context, emit func(Frame)) error {
	g, err := s.open(s.cfg.Monitor, s.cfg.Region)
	if err != nil {
		return fmt.Errorf("starting screen capture: %w", err)
	}
	defer g.Close()
	enc, err := newEncoder(s.cfg.Quality)
	if err != nil {
		return fmt.Errorf("starting screen capture: %w", err)
	}
	defer enc.Close()

	tick := time.NewTicker(time.Second / time.Duration(s.cfg.FPS))
	defer tick.Stop()
	var (
		prev Pixels
		sc   scaler
	)
	for {
		t0 := time.Now()
		px, err := g.Grab()
		if err != nil {
			return err
		}
		t1 := time.Now()
		// The grabber double-buffers, so prev stays valid until the next Grab;
		// it must follow every grab, changed or not.
		changed := !sameFrame(px, prev)
		prev = px
		if changed {
			out := px
			if w, h := scaledSize(px.Width, px.Height, s.cfg.MaxWidth); w != px.Width {
				out = sc.scale(px, w, h)
			}
			jpg, err := enc.Encode(out)
			if err != nil {
				return err
			}
			emit(Frame{JPEG: jpg, Width: out.Width, Height: out.Height, Captured: t0, Grab: t1.Sub(t0), Encode: time.Since(t1)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
