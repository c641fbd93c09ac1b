// Package pipeline turns one picture source into encoded tracks: one grab
// loop per share, and one track (an encoder and its fan-out) per encoding.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// Source produces raw pictures until ctx ends: the first at once, later ones
// when the picture changes. Each emitted picture carries one reference that
// the pipeline owns. It returns nil when ctx ends and an error when it cannot
// go on (the pipeline retries).
type Source = fanout.Source[*media.Picture]

// Options tune a Pipeline; zero values pick the defaults.
type Options struct {
	IdleStop time.Duration // how long a track runs on after its last subscriber leaves (3 s)
	Retry    time.Duration // first wait before restarting a failed source (250 ms, doubling to 5 s)
	OnChange func()        // called, never blocking, when a track or the grab loop starts, stops or fails
	Logger   *slog.Logger
}

// Pipeline runs one grab loop while any of its tracks is watched, and hands
// every changed picture to each running track. Tracks never wait for each
// other: each takes the newest picture when its encoder is free.
type Pipeline struct {
	opt      Options
	pictures *fanout.Hub[*media.Picture]

	mu     sync.Mutex
	tracks []*Track
}

// New returns a pipeline over src; nothing is grabbed until a track is watched.
func New(src Source, opt Options) *Pipeline {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	p := &Pipeline{opt: opt}
	p.pictures = fanout.New(owned(src), fanout.Options[*media.Picture]{
		// The tracks hold the grab loop; each has its own idle time already.
		IdleStop: time.Millisecond,
		Retry:    opt.Retry,
		Logger:   opt.Logger,
		Replay:   true, // a track that starts on a still screen gets its picture at once
		OnChange: opt.OnChange,
	})
	return p
}

// owned gives up the reference each emitted picture carries once the hub,
// which takes references of its own, has it.
func owned(src Source) Source {
	if src == nil {
		return nil
	}
	return fanout.SourceFunc[*media.Picture](func(ctx context.Context, emit func(*media.Picture)) error {
		return src.Run(ctx, func(p *media.Picture) {
			emit(p)
			p.Release()
		})
	})
}

// Delivery is how a track hands frames to its subscribers.
type Delivery int

const (
	// NewestWins gives each subscriber a one-frame slot in which a newer
	// frame replaces an unread one; a new subscriber gets the newest frame
	// at once. For codecs whose every frame stands alone (JPEG).
	NewestWins Delivery = iota
	// FromKeyframe gives each subscriber every frame in order, starting at a
	// keyframe: a new subscriber, and one that fell too far behind, wait for
	// the next keyframe, which the track asks its encoder for. For
	// inter-coded video (H.264, VP8).
	FromKeyframe
)

// TrackOptions describe one encoding.
type TrackOptions struct {
	Name     string                                  // e.g. "jpeg", for logs and subscriber names
	Encoder  func() (media.Encoder, error)           // makes the encoder when the track starts
	Delivery Delivery                                // NewestWins or FromKeyframe
	Queue    int                                     // FromKeyframe: frames a subscriber may fall behind (default 60)
	Prepare  func(*media.Frame, uint64) *media.Frame // the wire format's per-frame work, once per frame; nil for none
	// GOP and GOPBytes, for FromKeyframe, keep the frames since the newest
	// keyframe (at most GOP frames and GOPBytes bytes) and hand them to a
	// new subscriber, which then starts at once without a keyframe for
	// everybody (see fanout.Options.GOP); 0 keeps none.
	GOP, GOPBytes int
	// ReplayBudget bounds the bytes a second replayed to joiners (see
	// fanout.Options.ReplayBudget); 0 for no bound.
	ReplayBudget int
	// KeyframeEvery, if not 0, is the least time between two keyframes made
	// on request: requests that come sooner make one keyframe when it is up,
	// so viewers asking often cannot fill everybody's link with keyframes.
	KeyframeEvery time.Duration
}

// Track is one encoding of the pipeline's pictures: an encoder that runs
// only while the track has subscribers, and the fan-out to them.
type Track struct {
	*fanout.Hub[*media.Frame]
	p       *Pipeline
	opt     TrackOptions
	keyWant chan struct{} // a keyframe was asked for; capacity one, so requests coalesce
	bitrate atomic.Int64  // the target SetBitrate asked for, 0 for the encoder's own

	mu         sync.Mutex
	newEncoder func() (media.Encoder, error)
}

// Track adds an encoding. Its encoder starts with the first subscriber.
func (p *Pipeline) Track(opt TrackOptions) *Track {
	t := &Track{p: p, opt: opt, keyWant: make(chan struct{}, 1), newEncoder: opt.Encoder}
	fo := fanout.Options[*media.Frame]{
		IdleStop: p.opt.IdleStop, Retry: p.opt.Retry, Logger: p.opt.Logger,
		Replay: true, Prepare: opt.Prepare, OnChange: p.opt.OnChange,
	}
	if fo.Prepare == nil {
		// The encoder made the frame for this track alone: number it in place.
		fo.Prepare = func(f *media.Frame, seq uint64) *media.Frame { f.Seq = seq; return f }
	}
	if opt.Delivery == FromKeyframe {
		fo.Queue, fo.Replay = opt.Queue, false
		if fo.Queue <= 0 {
			fo.Queue = 60
		}
		fo.Keyframe = func(f *media.Frame) bool { return f.Keyframe }
		fo.NeedKeyframe = t.RequestKeyframe
		fo.GOP, fo.GOPBytes, fo.ReplayBudget = opt.GOP, opt.GOPBytes, opt.ReplayBudget
		fo.Size = func(f *media.Frame) int { return len(f.Data) }
		fo.Droppable = func(f *media.Frame) bool { return f.Droppable }
	}
	t.Hub = fanout.New(fanout.Source[*media.Frame](fanout.SourceFunc[*media.Frame](t.run)), fo)
	p.mu.Lock()
	p.tracks = append(p.tracks, t)
	p.mu.Unlock()
	return t
}

// SetEncoder replaces the encoder factory (e.g. for another quality); a
// running track restarts its encoder at once, and subscribers stay.
func (t *Track) SetEncoder(f func() (media.Encoder, error)) {
	t.mu.Lock()
	t.newEncoder = f
	t.mu.Unlock()
	t.SetSource(fanout.SourceFunc[*media.Frame](t.run))
}

// Name returns the track's name.
func (t *Track) Name() string { return t.opt.Name }

// RequestKeyframe asks for a keyframe soon; requests made before the encoder
// gets to it count as one.
func (t *Track) RequestKeyframe() {
	select {
	case t.keyWant <- struct{}{}:
	default:
	}
}

// bitrateSetter is an encoder whose target bitrate can change as it runs.
type bitrateSetter interface{ SetBitrate(bps int) }

// SetBitrate sets the encoder's target bitrate (bit/s) from its next frame
// on, and for the encoders made later, where the encoder has one (H.264 and
// VP8 do); the viewers' links decide it.
func (t *Track) SetBitrate(bps int) { t.bitrate.Store(int64(bps)) }

// run encodes the newest picture whenever the encoder is free, until ctx ends.
func (t *Track) run(ctx context.Context, emit func(*media.Frame)) error {
	sub, err := t.p.pictures.Subscribe(fanout.SubscriberInfo{ID: "track " + t.opt.Name})
	if err != nil {
		return err
	}
	defer sub.Close()
	t.mu.Lock()
	newEncoder := t.newEncoder
	t.mu.Unlock()
	enc, err := newEncoder()
	if err != nil {
		return fmt.Errorf("starting the %s encoder: %w", t.opt.Name, err)
	}
	defer enc.Close()
	// The newest picture encoded, so that a keyframe asked for on a still
	// screen (a viewer joining) can be made without waiting for a change.
	var cur *media.Picture
	defer func() {
		if cur != nil {
			cur.Release()
		}
	}()
	// Keyframes asked for sooner than KeyframeEvery after the last one wait
	// for due: then one is made.
	var lastKey time.Time
	var due *time.Timer
	var dueC <-chan time.Time
	defer func() {
		if due != nil {
			due.Stop()
		}
	}()
	// keyframe forces a keyframe on the next encode, or schedules one.
	keyframe := func() bool {
		if wait := t.opt.KeyframeEvery - time.Since(lastKey); t.opt.KeyframeEvery > 0 && wait > 0 {
			if dueC == nil {
				due = time.NewTimer(wait)
				dueC = due.C
			}
			return false
		}
		enc.ForceKeyframe()
		return true
	}
	var bitrate int64 // the target the encoder was last given
	encode := func() error {
		if bs, ok := enc.(bitrateSetter); ok {
			if b := t.bitrate.Load(); b != bitrate && b > 0 {
				bs.SetBitrate(int(b))
				bitrate = b
			}
		}
		f, err := enc.Encode(cur)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", t.opt.Name, err)
		}
		if f != nil { // nil: the encoder skipped the picture
			if f.Keyframe {
				lastKey = time.Now()
			}
			emit(f)
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Done():
			return errors.New("the grab loop closed")
		case pic := <-sub.Frames():
			if cur != nil {
				cur.Release()
			}
			cur = pic
			select {
			case <-t.keyWant:
				keyframe()
			default:
			}
			if err := encode(); err != nil {
				return err
			}
		case <-dueC:
			dueC = nil
			enc.ForceKeyframe()
			if cur != nil {
				if err := encode(); err != nil {
					return err
				}
			}
		case <-t.keyWant:
			if keyframe() && cur != nil { // else the first picture, due any moment, makes it
				if err := encode(); err != nil {
					return err
				}
			}
		}
	}
}

// SetSource replaces the picture source (another monitor, a new size);
// subscribers stay connected and get the new source's pictures.
func (p *Pipeline) SetSource(src Source) { p.pictures.SetSource(owned(src)) }

// SetPaused stops grabbing and encoding while paused; subscribers stay.
func (p *Pipeline) SetPaused(paused bool) {
	p.mu.Lock()
	tracks := append([]*Track(nil), p.tracks...)
	p.mu.Unlock()
	for _, t := range tracks {
		t.SetPaused(paused)
	}
	p.pictures.SetPaused(paused)
}

// Err returns the grab loop's last error, until it next delivers a picture.
func (p *Pipeline) Err() error { return p.grabStats().Err }

// Grabbing reports whether the grab loop runs.
func (p *Pipeline) Grabbing() bool { return p.grabStats().Running }

func (p *Pipeline) grabStats() fanout.Stats[*media.Picture] {
	st := p.pictures.Stats()
	if st.Last != nil {
		st.Last.Release() // only the counters are wanted
		st.Last = nil
	}
	return st
}

// Close ends every track and the grab loop and waits for all of them.
func (p *Pipeline) Close() {
	p.mu.Lock()
	tracks := p.tracks
	p.tracks = nil
	p.mu.Unlock()
	for _, t := range tracks {
		t.Close()
	}
	p.pictures.Close()
}
