// Package fanout runs one source while anybody subscribes and hands every item it emits to every subscriber.
package fanout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by a Hub that has been closed.
var ErrClosed = errors.New("stream closed")

// ErrPaused is returned for a snapshot while the hub is paused.
var ErrPaused = errors.New("sharing is paused")

// Source produces items until ctx ends. It should emit the first item at
// once; it returns nil when ctx ends and an error when it cannot go on (the
// hub retries). Emit does not take the caller's reference to a
// reference-counted item: the hub takes its own (see Hub).
type Source[T any] interface {
	Run(ctx context.Context, emit func(T)) error
}

// SourceFunc adapts a function to Source.
type SourceFunc[T any] func(ctx context.Context, emit func(T)) error

// Run calls f.
func (f SourceFunc[T]) Run(ctx context.Context, emit func(T)) error { return f(ctx, emit) }

// Options tune a Hub; zero values pick the defaults.
type Options[T any] struct {
	IdleStop time.Duration // how long the source runs on after the last subscriber leaves (3 s)
	Retry    time.Duration // first wait before restarting a failed source (250 ms, doubling to 5 s)
	Logger   *slog.Logger

	// Queue is each subscriber's queue length (1): a new item pushes out the
	// oldest unread one. Video uses one (the newest frame wins), audio a few.
	Queue int
	// Replay hands a new subscriber the newest item at once.
	Replay bool
	// Prepare, if set, returns the item to publish in place of the emitted
	// one, numbered seq (1 for the first the hub publishes): a track's wire
	// format is built here once per item, not once per subscriber. It must
	// not change the emitted item, which the source may emit again. For a
	// reference-counted T it is handed one reference of its own and returns
	// one: return v itself, or release v and return a new item.
	Prepare func(v T, seq uint64) T
	// Keyframe, if set, makes delivery in order from a keyframe, for
	// inter-coded video: it reports whether an item can be decoded on its
	// own. A new subscriber gets nothing until the next keyframe (Replay is
	// ignored); one whose queue overflows loses what it holds, since nothing
	// after a gap decodes, and waits for the next keyframe too. Either way
	// the hub calls NeedKeyframe.
	Keyframe func(v T) bool
	// NeedKeyframe is called when a subscriber starts waiting for a
	// keyframe. It runs under the hub's lock: it must not block or call the hub.
	NeedKeyframe func()
	// GOP, with Keyframe, keeps the items from the newest keyframe on, at
	// most GOP of them (and at most Queue) and GOPBytes of Size in all, and
	// queues them for a new subscriber at once: it starts decoding from the
	// current group of pictures, and nobody else gets a keyframe for it. A
	// group grown past either bound is forgotten until the next keyframe; a
	// subscriber that joins meanwhile waits for a keyframe as without GOP.
	GOP      int
	GOPBytes int         // 0: no bound in bytes
	Size     func(T) int // an item's size for GOPBytes and ReplayBudget
	// Droppable, if set, reports an item no later one depends on: the group
	// keeps such an item only while it is the newest (it is what the screen
	// shows), so a joiner is replayed the reference frames alone.
	Droppable func(T) bool
	// ReplayBudget, if not 0, bounds what the hub replays to joiners, in
	// Size a second (a token bucket a second deep): a joiner whose group
	// does not fit waits for a keyframe instead, so that many joining at
	// once share one keyframe rather than each taking a whole group.
	ReplayBudget int
	// OnChange is called when the subscriber count, the running state or
	// the error changes. It runs under the hub's lock: it must not block or
	// call the hub.
	OnChange func()
}

// refCounted is an item whose memory is reference counted, as
// *media.Picture is. The hub retains and releases such items by itself.
type refCounted[T any] interface {
	Retain() T
	Release()
}

func retain[T any](v T) T {
	if r, ok := any(v).(refCounted[T]); ok {
		return r.Retain()
	}
	return v
}

func release[T any](v T) {
	if r, ok := any(v).(refCounted[T]); ok {
		r.Release()
	}
}

// Hub runs one source while anybody subscribes and hands every item it
// emits to every subscriber. It never waits for a subscriber: each has a
// short queue (Options.Queue) in which a new item pushes out the oldest
// unread one, and the pushed-out items are counted as dropped.
//
// Items are shared by every subscriber and never changed once published.
// When T has the methods Retain() T and Release() (a reference-counted item,
// such as *media.Picture), the hub keeps the counts: the newest item it
// keeps (Last) and every queued copy hold a reference of their own; an item
// pushed out of a full queue, a replaced newest item and the items still
// queued when a subscription ends are released. Whoever receives an item
// from the hub (Frames, Last, Snapshot, Stats) owns a reference and releases it.
type Hub[T any] struct {
	opt Options[T]
	log *slog.Logger

	mu       sync.Mutex
	src      Source[T]
	subs     map[*Subscriber[T]]struct{}
	last     T
	hasLast  bool
	seq      uint64
	paused   bool
	closed   bool
	run      *run           // the current run, nil when stopped
	prevRun  *run           // the newest run, stopped or not: the next one waits for it
	runs     sync.WaitGroup // every run's goroutine, for Close
	idle     *time.Timer
	idleGen  uint64 // which idle timer is current
	err      error  // the source's last error, until its next item
	gop      []T    // with Options.GOP: the items since the newest keyframe, each holding a reference
	gopBytes int    // their Size in all
	gopOpen  bool   // gop starts at a keyframe and is within its bounds
	replay   budget // what ReplayBudget still allows

	frames  atomic.Uint64 // published
	dropped atomic.Uint64 // pushed out before a subscriber read them, all subscribers
	fps     meter
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a hub for src; a nil src means none yet (subscribers wait).
// The source starts with the first subscriber.
func New[T any](src Source[T], opt Options[T]) *Hub[T] {
	if opt.IdleStop <= 0 {
		opt.IdleStop = 3 * time.Second
	}
	if opt.Retry <= 0 {
		opt.Retry = 250 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Queue <= 0 {
		opt.Queue = 1
	}
	if opt.Keyframe == nil {
		opt.GOP = 0
	}
	return &Hub[T]{opt: opt, log: opt.Logger, src: src, subs: map[*Subscriber[T]]struct{}{}}
}

// SubscriberInfo describes who is behind a subscription.
type SubscriberInfo struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	UserAgent string    `json:"user_agent"`
	Since     time.Time `json:"since"`
}

// Subscriber receives items from a Hub until it is closed.
type Subscriber[T any] struct {
	Info SubscriberInfo

	b       *Hub[T]
	ch      chan T
	fn      func(T) // a direct subscriber's (SubscribeFunc); ch is then nil
	done    chan struct{}
	once    sync.Once
	sent    atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64
	fps     meter
	waitKey bool // under the hub's lock: nothing is queued until the next keyframe
	// limit is how many items may wait in ch (under the hub's lock): Queue,
	// plus what is left of a replayed group of pictures while it drains.
	limit int
}

// Subscribe adds a subscriber and starts the source if it is not running.
// With Replay the newest item, if there is one, is waiting in its queue at once.
func (b *Hub[T]) Subscribe(info SubscriberInfo) (*Subscriber[T], error) {
	return b.add(&Subscriber[T]{Info: info, b: b, ch: make(chan T, b.opt.Queue+b.opt.GOP), done: make(chan struct{}), limit: b.opt.Queue})
}

// SubscribeFunc adds a direct subscriber: fn is called with each item as it
// is published, in the source's goroutine and under the hub's lock, until
// Close returns; it owns a reference to the item only for the call. It
// saves a hand-over to another goroutine per item, which at a hundred items
// a second (sound) costs more than a short fn: fn must never block nor call
// the hub. Such a subscriber has no queue, no replay and no keyframe wait;
// Frames is nil. It starts the source like any other.
func (b *Hub[T]) SubscribeFunc(info SubscriberInfo, fn func(T)) (*Subscriber[T], error) {
	return b.add(&Subscriber[T]{Info: info, b: b, fn: fn, done: make(chan struct{})})
}

func (b *Hub[T]) add(s *Subscriber[T]) (*Subscriber[T], error) {
	if s.Info.Since.IsZero() {
		s.Info.Since = time.Now()
	}
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
	switch {
	case s.fn != nil:
	case b.opt.Keyframe != nil && b.gopOpen && b.replay.take(b.opt.ReplayBudget, b.gopBytes):
		for _, v := range b.gop { // fits: the queue has room for Queue+GOP
			s.ch <- retain(v)
		}
		s.limit += len(b.gop)
	case b.opt.Keyframe != nil:
		s.waitKey = true
		if b.opt.NeedKeyframe != nil {
			b.opt.NeedKeyframe()
		}
	case b.opt.Replay && b.hasLast:
		s.ch <- retain(b.last)
	}
	if b.run == nil && !b.paused {
		b.startLocked()
	}
	b.changedLocked()
	return s, nil
}

// Frames delivers the items; when the queue is full the oldest unread one is
// dropped. The receiver owns what it reads (see Hub).
func (s *Subscriber[T]) Frames() <-chan T { return s.ch }

// Done is closed when the subscription ends: by Close or by the hub closing.
func (s *Subscriber[T]) Done() <-chan struct{} { return s.done }

// Sent records that an item of n bytes reached the subscriber.
func (s *Subscriber[T]) Sent(n int) {
	s.sent.Add(1)
	s.bytes.Add(uint64(n))
	s.fps.Add(1)
}

// Close ends the subscription and releases what is still queued. The source
// stops IdleStop after the last one closes.
func (s *Subscriber[T]) Close() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.endLocked()
	b.changedLocked()
	if len(b.subs) == 0 && b.run != nil && b.idle == nil {
		b.idleGen++
		gen := b.idleGen
		b.idle = time.AfterFunc(b.opt.IdleStop, func() { b.idleStop(gen) })
	}
}

// endLocked closes Done and releases the queued items; the hub's lock is
// held and s is no longer among its subscribers, so nothing more is queued.
func (s *Subscriber[T]) endLocked() {
	s.once.Do(func() { close(s.done) })
	for {
		select {
		case v := <-s.ch: // unless the subscriber took it meanwhile: then it is its own
			release(v)
		default:
			return
		}
	}
}

// offer queues v, pushing out the oldest unread item when the queue is full.
// Only publish calls it, under the hub's lock, so it is the queue's only sender.
func (s *Subscriber[T]) offer(v T) {
	if s.fn != nil {
		s.fn(v)
		release(v)
		s.Sent(0)
		return
	}
	if s.b.opt.Keyframe != nil {
		s.offerInOrder(v)
		return
	}
	select {
	case s.ch <- v:
		return
	default:
	}
	select {
	case old := <-s.ch:
		release(old)
		s.dropped.Add(1)
		s.b.dropped.Add(1)
	default: // the subscriber took it meanwhile
	}
	s.ch <- v
}

// offerInOrder queues v for a subscriber that must see every frame from a
// keyframe on: when it has fallen a whole queue behind, what it holds is
// dropped and it waits for the next keyframe.
func (s *Subscriber[T]) offerInOrder(v T) {
	key := s.b.opt.Keyframe(v)
	if s.waitKey && !key {
		release(v)
		return
	}
	s.waitKey = false
	// What is left of a replayed group of pictures counts on top of Queue
	// until the subscriber has read it.
	s.limit = max(s.b.opt.Queue, min(s.limit, len(s.ch)+s.b.opt.Queue))
	if len(s.ch) < s.limit { // only publish sends, so there is room
		s.ch <- v
		return
	}
	n := uint64(1)
	for drained := false; !drained; {
		select {
		case old := <-s.ch:
			release(old)
			n++
		default:
			drained = true
		}
	}
	if key { // v starts afresh
		n--
		s.ch <- v
	} else {
		release(v)
		s.waitKey = true
		if s.b.opt.NeedKeyframe != nil {
			s.b.opt.NeedKeyframe()
		}
	}
	s.dropped.Add(n)
	s.b.dropped.Add(n)
}

// changedLocked tells OnChange; b.mu is held.
func (b *Hub[T]) changedLocked() {
	if b.opt.OnChange != nil {
		b.opt.OnChange()
	}
}

func (b *Hub[T]) idleStop(gen uint64) {
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
func (b *Hub[T]) startLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	prev := b.prevRun
	b.run, b.prevRun = r, r
	b.changedLocked()
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
			err := src.Run(ctx, func(v T) { b.publish(r, v) })
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
				b.changedLocked()
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
func (b *Hub[T]) stopLocked() *run {
	r := b.run
	if r == nil {
		return nil
	}
	b.run = nil
	r.cancel()
	b.dropLastLocked() // stale once the source stops: a new subscriber waits for a fresh one
	b.dropGOPLocked()
	b.err = nil // an error of a stopped source says nothing of the next
	b.changedLocked()
	return r
}

// dropGOPLocked forgets the group of pictures kept for new subscribers.
func (b *Hub[T]) dropGOPLocked() {
	for _, v := range b.gop {
		release(v)
	}
	clear(b.gop)
	b.gop, b.gopBytes, b.gopOpen = b.gop[:0], 0, false
}

// keepGOPLocked adds v, published, to the group of pictures; b.mu is held.
func (b *Hub[T]) keepGOPLocked(v T) {
	if b.opt.GOP <= 0 || b.opt.Keyframe == nil {
		return
	}
	if b.opt.Keyframe(v) {
		b.dropGOPLocked()
		b.gopOpen = true
	} else if !b.gopOpen {
		return
	}
	// A droppable item is needed only while it is the newest: nothing
	// refers to it, and a newer one shows the screen as it is now.
	if k := len(b.gop) - 1; k > 0 && b.opt.Droppable != nil && b.opt.Droppable(b.gop[k]) {
		b.gopBytes -= b.size(b.gop[k])
		release(b.gop[k])
		var zero T
		b.gop[k] = zero
		b.gop = b.gop[:k]
	}
	n := b.size(v)
	if len(b.gop) >= b.opt.GOP || b.opt.GOPBytes > 0 && b.gopBytes+n > b.opt.GOPBytes {
		b.dropGOPLocked()
		return
	}
	b.gop = append(b.gop, retain(v))
	b.gopBytes += n
}

// size is v's Size, 0 without one.
func (b *Hub[T]) size(v T) int {
	if b.opt.Size == nil {
		return 0
	}
	return b.opt.Size(v)
}

// budget is a token bucket of Size units, refilled at a rate a second up to
// one second's worth.
type budget struct {
	tokens float64
	last   time.Time
}

// take spends n if the bucket holds that much, refilled at rate; a rate of
// 0 means no bound.
func (r *budget) take(rate, n int) bool {
	if rate <= 0 {
		return true
	}
	now := time.Now()
	if r.last.IsZero() {
		r.tokens = float64(rate)
	} else {
		r.tokens = min(float64(rate), r.tokens+now.Sub(r.last).Seconds()*float64(rate))
	}
	r.last = now
	if r.tokens < float64(n) {
		return false
	}
	r.tokens -= float64(n)
	return true
}

// dropLastLocked forgets the newest item, releasing the hub's reference.
func (b *Hub[T]) dropLastLocked() {
	if b.hasLast {
		release(b.last)
	}
	var zero T
	b.last, b.hasLast = zero, false
}

func (b *Hub[T]) publish(r *run, v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != r {
		return // a stopped or replaced run
	}
	b.seq++
	v = retain(v) // the hub's own reference, which becomes last's
	if b.opt.Prepare != nil {
		v = b.opt.Prepare(v, b.seq)
	}
	b.dropLastLocked()
	b.last, b.hasLast = v, true
	if b.err != nil {
		b.err = nil
		b.changedLocked()
	}
	b.frames.Add(1)
	b.fps.Add(1)
	b.keepGOPLocked(v)
	for s := range b.subs {
		s.offer(retain(v))
	}
}

// SetPaused stops the source while paused and restarts it on resume if anybody subscribes.
func (b *Hub[T]) SetPaused(p bool) {
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

// SetSource replaces the source (nil for none), e.g. for another monitor or
// audio device. Subscribers stay connected and get the new source's items.
func (b *Hub[T]) SetSource(src Source[T]) {
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
// A reference-counted item is retained for the caller.
func (b *Hub[T]) Last() T {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hasLast {
		var zero T
		return zero
	}
	return retain(b.last)
}

// Snapshot returns the newest item, starting the source for it if nobody
// subscribes; ErrPaused while paused. A reference-counted item is the caller's.
func (b *Hub[T]) Snapshot(ctx context.Context) (T, error) {
	var zero T
	b.mu.Lock()
	paused, has := b.paused, b.hasLast
	var v T
	if has && !paused {
		v = retain(b.last)
	}
	b.mu.Unlock()
	switch {
	case paused:
		return zero, ErrPaused
	case has:
		return v, nil
	}
	s, err := b.Subscribe(SubscriberInfo{ID: "snapshot"})
	if err != nil {
		return zero, err
	}
	defer s.Close()
	select {
	case v := <-s.Frames():
		return v, nil
	case <-s.Done():
		return zero, ErrClosed
	case <-ctx.Done():
		b.mu.Lock()
		err := b.err
		b.mu.Unlock()
		if err != nil {
			return zero, err
		}
		return zero, ctx.Err()
	}
}

// Close stops the source and ends every subscription, and waits for every run of the source to return.
func (b *Hub[T]) Close() {
	b.mu.Lock()
	b.closed = true
	if b.idle != nil {
		b.idle.Stop()
		b.idle = nil
	}
	r := b.stopLocked()
	for s := range b.subs {
		s.endLocked()
	}
	clear(b.subs)
	b.mu.Unlock()
	if r != nil {
		<-r.done
	}
	b.runs.Wait() // runs stopped earlier (idle stop, pause, a new source) may still be ending
}

// Stats is a snapshot of a hub's state and counters.
type Stats[T any] struct {
	Running     bool
	Paused      bool
	Subscribers int
	FPS         uint64 // items published in the last whole second
	Frames      uint64 // items published since start
	Dropped     uint64 // items pushed out before a subscriber read them
	Last        T      // the newest item (retained for the caller if reference counted)
	Err         error
}

// Stats returns the current state and counters.
func (b *Hub[T]) Stats() Stats[T] {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats[T]{
		Running: b.run != nil, Paused: b.paused, Subscribers: len(b.subs), FPS: b.fps.Rate(),
		Frames: b.frames.Load(), Dropped: b.dropped.Load(), Err: b.err,
	}
	if b.hasLast {
		st.Last = retain(b.last)
	}
	return st
}

// SubscriberStats is one subscriber's counters.
type SubscriberStats struct {
	SubscriberInfo
	FPS     uint64 `json:"fps"`
	Frames  uint64 `json:"frames"`
	Bytes   uint64 `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

// Stats returns the subscriber's counters.
func (s *Subscriber[T]) Stats() SubscriberStats {
	return SubscriberStats{SubscriberInfo: s.Info, FPS: s.fps.Rate(), Frames: s.sent.Load(), Bytes: s.bytes.Load(), Dropped: s.dropped.Load()}
}

// Subscribers returns every subscriber's counters.
func (b *Hub[T]) Subscribers() []SubscriberStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]SubscriberStats, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s.Stats())
	}
	return out
}
