package stream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by a Broadcaster that has been closed.
var ErrClosed = errors.New("stream closed")

// ErrPaused is returned for a snapshot while sharing is paused.
var ErrPaused = errors.New("sharing is paused")

// BroadcasterOptions tune a Broadcaster; zero values pick the defaults.
type BroadcasterOptions struct {
	IdleStop time.Duration // how long the source runs on after the last viewer leaves (3 s)
	Retry    time.Duration // first wait before restarting a failed source (250 ms, doubling to 5 s)
	Logger   *slog.Logger
}

// hub runs one source while anybody subscribes and hands every item it
// emits to every subscriber. It never waits for a subscriber: each has a
// short queue in which a new item pushes out the oldest unread one, and the
// pushed-out items are counted as dropped. Video uses a queue of one (the
// newest frame wins), audio a few chunks.
type hub[T any] struct {
	opt    BroadcasterOptions
	log    *slog.Logger
	queue  int               // per-subscriber queue length
	replay bool              // a new subscriber gets the newest item at once
	stamp  func(T, uint64) T // returns the item to publish, numbered seq

	mu      sync.Mutex
	src     source[T]
	subs    map[*sub[T]]struct{}
	last    T
	hasLast bool
	seq     uint64
	paused  bool
	closed  bool
	run     *run           // the current run, nil when stopped
	prevRun *run           // the newest run, stopped or not: the next one waits for it
	runs    sync.WaitGroup // every run's goroutine, for Close
	idle    *time.Timer
	idleGen uint64 // which idle timer is current
	err     error  // the source's last error, until its next item

	frames  atomic.Uint64 // published
	dropped atomic.Uint64 // pushed out before a subscriber read them, all subscribers
	fps     meter
}

// source is what a hub runs: Source for video, AudioSource for sound.
type source[T any] interface {
	Run(ctx context.Context, emit func(T)) error
}

func newHub[T any](src source[T], opt BroadcasterOptions, queue int, replay bool, stamp func(T, uint64) T) *hub[T] {
	if opt.IdleStop <= 0 {
		opt.IdleStop = 3 * time.Second
	}
	if opt.Retry <= 0 {
		opt.Retry = 250 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &hub[T]{opt: opt, log: opt.Logger, queue: queue, replay: replay, stamp: stamp, src: src, subs: map[*sub[T]]struct{}{}}
}

// Broadcaster runs one video Source while anybody watches and hands every
// frame to every viewer, each through a one-frame slot where the newest frame
// replaces an unread one (counted as dropped). A new viewer gets the newest
// frame at once.
type Broadcaster struct{ *hub[*Frame] }

// Subscriber receives frames from a Broadcaster until it is closed.
type Subscriber = sub[*Frame]

// BroadcastStats is a snapshot of a Broadcaster's state and counters.
type BroadcastStats = HubStats[*Frame]

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewBroadcaster returns a broadcaster for src. The source starts with the first subscriber.
func NewBroadcaster(src Source, opt BroadcasterOptions) *Broadcaster {
	return &Broadcaster{newHub[*Frame](src, opt, 1, true, stampFrame)}
}

// stampFrame publishes a numbered copy of f with its multipart bytes: the
// source may emit the same frame again, and the one viewers hold must never
// change.
func stampFrame(f *Frame, seq uint64) *Frame {
	nf := *f
	nf.Seq = seq
	nf.part = append(append(make([]byte, 0, len(f.JPEG)+len(partTail)), f.JPEG...), partTail...)
	nf.JPEG = nf.part[:len(f.JPEG):len(f.JPEG)] // one copy of the bytes in memory, not two
	return &nf
}

// ViewerInfo describes who is behind a subscription.
type ViewerInfo struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	UserAgent string    `json:"user_agent"`
	Since     time.Time `json:"since"`
}

// sub receives items from a hub until it is closed.
type sub[T any] struct {
	Info ViewerInfo

	b       *hub[T]
	ch      chan T
	done    chan struct{}
	once    sync.Once
	sent    atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64
	fps     meter
}

// Subscribe adds a subscriber and starts the source if it is not running.
// For video the newest frame, if there is one, is waiting in its slot at once.
func (b *hub[T]) Subscribe(info ViewerInfo) (*sub[T], error) {
	if info.Since.IsZero() {
		info.Since = time.Now()
	}
	s := &sub[T]{Info: info, b: b, ch: make(chan T, b.queue), done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	if b.idle != nil {
		b.idle.Stop()
		b.idle = nil
	}
	if b.replay && b.hasLast {
		s.ch <- b.last
	}
	if b.run == nil && !b.paused {
		b.startLocked()
	}
	return s, nil
}

// Frames delivers the items; when the queue is full the oldest unread one is dropped.
func (s *sub[T]) Frames() <-chan T { return s.ch }

// Done is closed when the subscription ends: by Close or by the broadcaster closing.
func (s *sub[T]) Done() <-chan struct{} { return s.done }

// Sent records that a frame of n bytes reached the viewer.
func (s *sub[T]) Sent(n int) {
	s.sent.Add(1)
	s.bytes.Add(uint64(n))
	s.fps.Add(1)
}

// Close ends the subscription. The source stops IdleStop after the last one closes.
func (s *sub[T]) Close() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.end()
	if len(b.subs) == 0 && b.run != nil && b.idle == nil {
		b.idleGen++
		gen := b.idleGen
		b.idle = time.AfterFunc(b.opt.IdleStop, func() { b.idleStop(gen) })
	}
}

func (s *sub[T]) end() { s.once.Do(func() { close(s.done) }) }

// offer queues f, pushing out the oldest unread item when the queue is full.
// Only publish calls it, under the hub's lock, so it is the queue's only sender.
func (s *sub[T]) offer(f T) {
	select {
	case s.ch <- f:
		return
	default:
	}
	select {
	case <-s.ch:
		s.dropped.Add(1)
		s.b.dropped.Add(1)
	default: // the viewer took it meanwhile
	}
	s.ch <- f
}

func (b *hub[T]) idleStop(gen uint64) {
	b.mu.Lock()
	var r *run
	if len(b.subs) == 0 && b.idle != nil && b.idleGen == gen { // not a timer a newer one replaced
		b.idle = nil
		r = b.stopLocked()
	}
	b.mu.Unlock()
	if r != nil {
		<-r.done
		b.log.Info("nobody watches: capture stopped")
	}
}

// startLocked starts the source; b.mu is held.
func (b *hub[T]) startLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	prev := b.prevRun
	b.run, b.prevRun = r, r
	src := b.src
	if src == nil { // no source (e.g. no audio device): subscribers wait
		close(r.done)
		return
	}
	b.runs.Add(1)
	go func() {
		defer b.runs.Done()
		defer close(r.done)
		// The previous run may still be letting go of the device (an X
		// connection, a sound card that allows one user): wait for it.
		if prev != nil {
			select {
			case <-prev.done:
			case <-ctx.Done():
				return
			}
		}
		wait := b.opt.Retry
		for {
			started := time.Now()
			err := src.Run(ctx, func(f T) { b.publish(r, f) })
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("source ended")
			}
			if time.Since(started) > 10*time.Second {
				wait = b.opt.Retry
			}
			b.mu.Lock()
			if b.run == r {
				b.err = err
			}
			b.mu.Unlock()
			b.log.Warn("capture failed, retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, 5*time.Second)
		}
	}()
}

// stopLocked cancels the running source and returns it so the caller can wait
// for it after releasing b.mu (the source may be blocked in publish).
func (b *hub[T]) stopLocked() *run {
	r := b.run
	if r == nil {
		return nil
	}
	b.run = nil
	r.cancel()
	var zero T
	b.last, b.hasLast = zero, false // stale once the source stops: a new viewer waits for a fresh one
	b.err = nil                     // an error of a stopped source says nothing of the next
	return r
}

func (b *hub[T]) publish(r *run, f T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != r {
		return // a stopped or replaced run
	}
	b.seq++
	if b.stamp != nil {
		f = b.stamp(f, b.seq)
	}
	b.last, b.hasLast = f, true
	b.err = nil
	b.frames.Add(1)
	b.fps.Add(1)
	for s := range b.subs {
		s.offer(f)
	}
}

// SetPaused stops the source while paused and restarts it on resume if anybody watches.
func (b *hub[T]) SetPaused(p bool) {
	b.mu.Lock()
	var r *run
	if b.paused != p && !b.closed {
		b.paused = p
		if p {
			r = b.stopLocked()
		} else if len(b.subs) > 0 {
			b.startLocked()
		}
	}
	b.mu.Unlock()
	if r != nil {
		<-r.done
	}
}

// SetSource replaces the source, e.g. for another monitor or audio device.
// Subscribers stay connected and get the new source's items.
func (b *hub[T]) SetSource(src source[T]) {
	b.mu.Lock()
	b.src = src
	b.err = nil
	var r *run
	if !b.closed {
		r = b.stopLocked()
		if len(b.subs) > 0 && !b.paused {
			b.startLocked()
		}
	}
	b.mu.Unlock()
	if r != nil {
		<-r.done
	}
}

// Last returns the newest item of the running source, or the zero value.
func (b *hub[T]) Last() T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Snapshot returns the current frame, starting the source for it if nobody watches.
func (b *Broadcaster) Snapshot(ctx context.Context) (*Frame, error) {
	b.mu.Lock()
	f, paused := b.last, b.paused
	b.mu.Unlock()
	switch {
	case paused:
		return nil, ErrPaused
	case f != nil:
		return f, nil
	}
	s, err := b.Subscribe(ViewerInfo{ID: "snapshot"})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	select {
	case f := <-s.Frames():
		return f, nil
	case <-s.Done():
		return nil, ErrClosed
	case <-ctx.Done():
		b.mu.Lock()
		err := b.err
		b.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return nil, ctx.Err()
	}
}

// Close stops the source and ends every subscription, and waits for every run of the source to return.
func (b *hub[T]) Close() {
	b.mu.Lock()
	b.closed = true
	if b.idle != nil {
		b.idle.Stop()
		b.idle = nil
	}
	r := b.stopLocked()
	for s := range b.subs {
		s.end()
	}
	clear(b.subs)
	b.mu.Unlock()
	if r != nil {
		<-r.done
	}
	b.runs.Wait() // runs stopped earlier (idle stop, pause, a new source) may still be ending
}

// HubStats is a snapshot of a hub's state and counters.
type HubStats[T any] struct {
	Running bool
	Paused  bool
	Viewers int
	FPS     uint64 // items published in the last whole second
	Frames  uint64 // items published since start
	Dropped uint64 // items pushed out before a subscriber read them
	Last    T
	Err     error
}

// Stats returns the current state and counters.
func (b *hub[T]) Stats() HubStats[T] {
	b.mu.Lock()
	defer b.mu.Unlock()
	return HubStats[T]{
		Running: b.run != nil, Paused: b.paused, Viewers: len(b.subs), FPS: b.fps.Rate(),
		Frames: b.frames.Load(), Dropped: b.dropped.Load(), Last: b.last, Err: b.err,
	}
}

// ViewerStats is one subscriber's counters.
type ViewerStats struct {
	ViewerInfo
	FPS     uint64 `json:"fps"`
	Frames  uint64 `json:"frames"`
	Bytes   uint64 `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

// Stats returns the subscriber's counters.
func (s *sub[T]) Stats() ViewerStats {
	return ViewerStats{ViewerInfo: s.Info, FPS: s.fps.Rate(), Frames: s.sent.Load(), Bytes: s.bytes.Load(), Dropped: s.dropped.Load()}
}

// Viewers returns every subscriber's counters.
func (b *hub[T]) Viewers() []ViewerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ViewerStats, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s.Stats())
	}
	return out
}
