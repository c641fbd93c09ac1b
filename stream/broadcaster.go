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

// Broadcaster runs one Source while anybody watches and hands every frame to
// every subscriber. It never waits for a subscriber: each has a one-frame slot
// in which the newest frame replaces an unread one, and the replaced frames
// are counted as dropped.
type Broadcaster struct {
	opt BroadcasterOptions
	log *slog.Logger

	mu      sync.Mutex
	src     Source
	subs    map[*Subscriber]struct{}
	last    *Frame
	seq     uint64
	paused  bool
	closed  bool
	run     *run
	idle    *time.Timer
	idleGen uint64 // which idle timer is current
	err     error  // the source's last error, until its next frame

	frames  atomic.Uint64 // published
	dropped atomic.Uint64 // replaced before a subscriber read them, all subscribers
	fps     meter
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewBroadcaster returns a broadcaster for src. The source starts with the first subscriber.
func NewBroadcaster(src Source, opt BroadcasterOptions) *Broadcaster {
	if opt.IdleStop <= 0 {
		opt.IdleStop = 3 * time.Second
	}
	if opt.Retry <= 0 {
		opt.Retry = 250 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Broadcaster{opt: opt, log: opt.Logger, src: src, subs: map[*Subscriber]struct{}{}}
}

// ViewerInfo describes who is behind a subscription.
type ViewerInfo struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	UserAgent string    `json:"user_agent"`
	Since     time.Time `json:"since"`
}

// Subscriber receives frames from a Broadcaster until it is closed.
type Subscriber struct {
	Info ViewerInfo

	b       *Broadcaster
	ch      chan *Frame
	done    chan struct{}
	once    sync.Once
	sent    atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64
	fps     meter
}

// Subscribe adds a viewer and starts the source if it is not running. The
// newest frame, if there is one, is waiting in the subscriber's slot at once.
func (b *Broadcaster) Subscribe(info ViewerInfo) (*Subscriber, error) {
	if info.Since.IsZero() {
		info.Since = time.Now()
	}
	s := &Subscriber{Info: info, b: b, ch: make(chan *Frame, 1), done: make(chan struct{})}
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
	if b.last != nil {
		s.ch <- b.last
	}
	if b.run == nil && !b.paused {
		b.startLocked()
	}
	return s, nil
}

// Frames delivers the newest frame; a frame not read before the next one arrives is dropped.
func (s *Subscriber) Frames() <-chan *Frame { return s.ch }

// Done is closed when the subscription ends: by Close or by the broadcaster closing.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Sent records that a frame of n bytes reached the viewer.
func (s *Subscriber) Sent(n int) {
	s.sent.Add(1)
	s.bytes.Add(uint64(n))
	s.fps.Add(1)
}

// Close ends the subscription. The source stops IdleStop after the last one closes.
func (s *Subscriber) Close() {
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

func (s *Subscriber) end() { s.once.Do(func() { close(s.done) }) }

// offer puts f in the slot, replacing an unread frame. Only publish calls it,
// under the broadcaster's lock, so it is the slot's only sender.
func (s *Subscriber) offer(f *Frame) {
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

func (b *Broadcaster) idleStop(gen uint64) {
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
func (b *Broadcaster) startLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	b.run = r
	src := b.src
	go func() {
		defer close(r.done)
		wait := b.opt.Retry
		for {
			started := time.Now()
			err := src.Run(ctx, func(f *Frame) { b.publish(r, f) })
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
func (b *Broadcaster) stopLocked() *run {
	r := b.run
	if r == nil {
		return nil
	}
	b.run = nil
	r.cancel()
	b.last = nil // stale once the source stops: a new viewer waits for a fresh frame
	return r
}

func (b *Broadcaster) publish(r *run, f *Frame) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != r {
		return // a stopped or replaced run
	}
	// Publish a copy: the source's frame may be emitted again, and the one
	// viewers hold must never change.
	nf := *f
	f = &nf
	b.seq++
	f.Seq = b.seq
	f.part = append(append(make([]byte, 0, len(f.JPEG)+len(partTail)), f.JPEG...), partTail...)
	f.JPEG = f.part[:len(f.JPEG):len(f.JPEG)] // one copy of the bytes in memory, not two
	b.last = f
	b.err = nil
	b.frames.Add(1)
	b.fps.Add(1)
	for s := range b.subs {
		s.offer(f)
	}
}

// SetPaused stops the source while paused and restarts it on resume if anybody watches.
func (b *Broadcaster) SetPaused(p bool) {
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

// SetSource replaces the source, e.g. for another monitor. Viewers stay
// connected and get the new source's frames.
func (b *Broadcaster) SetSource(src Source) {
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

// Last returns the newest frame of the running source, or nil.
func (b *Broadcaster) Last() *Frame {
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

// Close stops the source and ends every subscription, and waits for the source to return.
func (b *Broadcaster) Close() {
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
}

// BroadcastStats is a snapshot of the broadcaster's state and counters.
type BroadcastStats struct {
	Running bool
	Paused  bool
	Viewers int
	FPS     uint64 // frames published in the last whole second
	Frames  uint64 // frames published since start
	Dropped uint64 // frames replaced before a viewer read them
	Last    *Frame
	Err     error
}

// Stats returns the current state and counters.
func (b *Broadcaster) Stats() BroadcastStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BroadcastStats{
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
func (s *Subscriber) Stats() ViewerStats {
	return ViewerStats{ViewerInfo: s.Info, FPS: s.fps.Rate(), Frames: s.sent.Load(), Bytes: s.bytes.Load(), Dropped: s.dropped.Load()}
}

// Viewers returns every subscriber's counters.
func (b *Broadcaster) Viewers() []ViewerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ViewerStats, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s.Stats())
	}
	return out
}
