// Package capture grabs the screen (a monitor or part of one) as raw pictures.
package capture

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"time"

	"github.com/deskcast/deskcast/media"
)

// ScreenConfig says what to capture and how.
type ScreenConfig struct {
	Monitor  int             // 0-based monitor index
	Region   image.Rectangle // relative to the monitor; empty means all of it
	FPS      int             // capture rate, frames per second
	MaxWidth int             // downscale wider frames to this width; 0 keeps the size
	// Portal keeps the screen-cast portal's permission between shares and
	// says what the portal is doing, on a Wayland session; nil keeps the
	// permission for this process only.
	Portal *Portal
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

// Screen captures a monitor (or part of one): as soon as it changes where
// the platform says so (XDamage on X11), else at a steady rate.
type Screen struct {
	cfg ScreenConfig
	// open is the grabber constructor; tests replace it to feed known pixels.
	// Its ctx is Run's: a start that waits (the portal's dialog) ends with it.
	open func(ctx context.Context, cfg ScreenConfig) (grabber, error)
	// poll is how long Run, with a grabber that tells it of changes, goes
	// without a grab before it grabs anyway, in case a notice was missed;
	// tests lengthen it to see a still screen cost nothing.
	poll time.Duration
}

// safetyPoll is Screen.poll unless a test says otherwise: a change notice
// that never comes costs at most this long on screen.
const safetyPoll = time.Second

// NewScreen checks cfg and returns a source for it. Nothing is captured until Run.
func NewScreen(cfg ScreenConfig) (*Screen, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Screen{cfg: cfg, open: newPlatformGrabber, poll: safetyPoll}, nil
}

// Run captures until ctx ends, calling emit with each picture that differs
// from the one before (the first picture always), scaled to MaxWidth. emit's
// receiver owns the picture's one reference and releases it when done; Run
// waits for nothing. Run returns nil when ctx ends and an error when the
// screen cannot be captured.
//
// Where the platform reports changes (XDamage on X11), Run grabs as soon as
// one is reported, but never sooner than 1/FPS after the grab before, and on
// a still screen only once a second, in case a report was missed. Elsewhere
// it grabs at the frame rate. Either way it compares, since a change may
// redraw the same pixels.
func (s *Screen) Run(ctx context.Context, emit func(*media.Picture)) error {
	g, err := s.open(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("starting screen capture: %w", err)
	}
	defer g.Close()

	interval := time.Second / time.Duration(s.cfg.FPS)
	var changes <-chan time.Time
	if n, ok := g.(changeNotifier); ok {
		changes = n.Changes()
	}
	// wait returns once the next grab is due, with the time of the change
	// notice that made it due (zero for a tick or a poll), or false when
	// ctx ends.
	var wait func(last time.Time) (time.Time, bool)
	if changes == nil {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		wait = func(time.Time) (time.Time, bool) {
			select {
			case <-ctx.Done():
				return time.Time{}, false
			case <-tick.C:
				return time.Time{}, true
			}
		}
	}
	// poll is how long a still screen goes ungrabbed. Some setups change
	// the screen without telling the damage extension (a compositor that
	// draws through GL, where other X11 sharers are told to turn damage off):
	// when a poll finds a change no notice reported, twice, Run grabs at the
	// frame rate from then on, and notices still make a grab come sooner.
	poll, unreported := s.poll, 0
	if changes != nil {
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		wait = func(last time.Time) (time.Time, bool) {
			return waitChange(ctx, timer, changes, last, interval, poll)
		}
	}

	var (
		prev *media.Picture // our reference to the last raw grab, to compare with
		sc   scaler
		last time.Time // when the last grab started
		st   runStats
	)
	defer func() {
		if prev != nil {
			prev.Release()
		}
		st.log()
	}()
	for {
		var noticed time.Time
		if !last.IsZero() {
			var ok bool
			if noticed, ok = wait(last); !ok {
				return nil
			}
		}
		t0 := time.Now()
		px, err := g.Grab()
		if err != nil {
			return err
		}
		px.Captured, px.Grab = t0, time.Since(t0)
		last = t0
		st.grabs++
		if !noticed.IsZero() {
			st.noticed++
			st.waited += t0.Sub(noticed)
		}
		changed := !sameFrame(px, prev)
		if changes != nil && changed && prev != nil && noticed.IsZero() && poll > interval {
			if unreported++; unreported == 2 {
				poll = interval
				slog.Warn("the screen changes without damage reports (a compositing desktop?): grabbing at the frame rate")
			}
		}
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
	}
}

// waitChange waits for a change notice, then until interval has passed
// since last, so that grabs keep to the frame rate; with no notice, it
// returns once poll has passed since last. It returns the notice's time (zero
// after a poll), or false when ctx ends. timer is Run's one timer, in any
// state: since Go 1.23, Reset drops a fire nobody read.
func waitChange(ctx context.Context, timer *time.Timer, changes <-chan time.Time, last time.Time, interval, poll time.Duration) (time.Time, bool) {
	var noticed time.Time
	timer.Reset(time.Until(last.Add(poll)))
	select {
	case <-ctx.Done():
		timer.Stop()
		return noticed, false
	case <-timer.C:
	case noticed = <-changes:
		timer.Stop()
		if d := time.Until(last.Add(interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return noticed, false
			case <-timer.C:
			}
		}
	}
	// A notice that came meanwhile is for a change the grab about to start
	// will see: dropping it saves a second grab of the same picture.
	select {
	case <-changes:
	default:
	}
	return noticed, true
}

// runStats counts one Run's grabs, for the log when it ends: how often it
// grabbed, and how long change notices waited for their grab (the frame-rate
// cap and the scheduling delay), which is latency added to the picture.
type runStats struct {
	grabs   int           // changed or not
	noticed int           // grabs that a change notice started
	waited  time.Duration // from those notices to their grabs, summed
}

func (st runStats) log() {
	var mean time.Duration
	if st.noticed > 0 {
		mean = st.waited / time.Duration(st.noticed)
	}
	slog.Debug("screen capture ended", "grabs", st.grabs, "on_change", st.noticed, "change_to_grab_mean", mean)
}
