package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds every wait in these tests. It is generous on purpose: the
// tests never pass or fail on how fast something happens, only on whether it
// happens at all.
const patience = 5 * time.Second

var quiet = slog.New(slog.DiscardHandler)

var errBoom = errors.New("boom")

// item is one frame handed to a feed, and a channel closed once emit returned.
type item struct {
	f    *stream.Frame
	done chan struct{}
}

// feed is a synthetic Source: the test hands it frames one at a time and
// sees every Run start and end.
type feed struct {
	q       chan item
	started chan int32 // the number of each Run, as it starts
	ended   chan int32 // the number of each Run, as it returns
	runs    atomic.Int32
	first   func() *stream.Frame // if set, emitted as soon as Run starts
}

func newFeed() *feed {
	return &feed{q: make(chan item, 16), started: make(chan int32, 64), ended: make(chan int32, 64)}
}

func (fd *feed) Source() stream.Source {
	return stream.SourceFunc(func(ctx context.Context, emit func(*stream.Frame)) error {
		n := fd.runs.Add(1)
		fd.started <- n
		defer func() { fd.ended <- n }()
		if fd.first != nil {
			emit(fd.first())
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case it := <-fd.q:
				emit(it.f)
				close(it.done)
			}
		}
	})
}

// push queues f for the running (or next) Run; the channel closes once the
// broadcaster's emit has returned for it.
func (fd *feed) push(f *stream.Frame) <-chan struct{} {
	it := item{f: f, done: make(chan struct{})}
	fd.q <- it
	return it.done
}

// emit hands f to the running source and waits until it has been published.
func (fd *feed) emit(t *testing.T, f *stream.Frame) {
	t.Helper()
	select {
	case <-fd.push(f):
	case <-time.After(patience):
		t.Fatalf("emit of %q did not return within %v: is the source running, or did the producer block?", f.JPEG, patience)
	}
}

// waitFor receives one value from ch and checks it is want.
func waitFor(t *testing.T, ch <-chan int32, want int32, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("%s: got run %d, want run %d", what, got, want)
		}
	case <-time.After(patience):
		t.Fatalf("%s: run %d did not happen within %v", what, want, patience)
	}
}

// nothingOn checks that ch has nothing ready right now.
func nothingOn[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: unexpected %v", what, v)
	default:
	}
}

// recv takes one frame from sub, waiting at most patience.
func recv(t *testing.T, sub *stream.Subscriber) *stream.Frame {
	t.Helper()
	select {
	case f := <-sub.Frames():
		return f
	case <-sub.Done():
		t.Fatal("subscription ended while waiting for a frame")
	case <-time.After(patience):
		t.Fatalf("no frame within %v", patience)
	}
	return nil
}

// eventually polls cond until it holds, failing after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, patience)
		}
		time.Sleep(time.Millisecond)
	}
}

func frame(name string) *stream.Frame { return &stream.Frame{JPEG: []byte(name)} }

// expect checks that got is the frame emitted as name, published as seq.
// Frames are told apart by their bytes, not by the pointer the source
// emitted: the broadcaster may publish its own copy of the Frame struct.
func expect(t *testing.T, got *stream.Frame, name string, seq uint64) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no frame, want %q Seq %d", name, seq)
	}
	if string(got.JPEG) != name || got.Seq != seq {
		t.Fatalf("got %q Seq %d, want %q Seq %d", got.JPEG, got.Seq, name, seq)
	}
}

func newBroadcaster(t *testing.T, src stream.Source, opt stream.BroadcasterOptions) *stream.Broadcaster {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	b := stream.NewBroadcaster(src, opt)
	t.Cleanup(b.Close)
	return b
}

func subscribe(t *testing.T, b *stream.Broadcaster, id string) *stream.Subscriber {
	t.Helper()
	s, err := b.Subscribe(stream.ViewerInfo{ID: id})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", id, err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestBroadcasterFanOut(t *testing.T) {
	fd := newFeed()
	b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
	subs := []*stream.Subscriber{subscribe(t, b, "a"), subscribe(t, b, "b"), subscribe(t, b, "c")}
	waitFor(t, fd.started, 1, "first subscriber starts the source")

	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("frame %d", i)
		fd.emit(t, frame(name))
		var first *stream.Frame
		for j, s := range subs {
			got := recv(t, s)
			expect(t, got, name, uint64(i))
			if j == 0 {
				first = got
				continue
			}
			if got != first {
				t.Fatalf("frame %d: subscriber %d got *Frame %p, subscriber 0 got %p; want one shared frame", i, j, got, first)
			}
			if &got.JPEG[0] != &first.JPEG[0] {
				t.Fatalf("frame %d: subscriber %d got a copy of the bytes", i, j)
			}
		}
		if last := b.Last(); last != first {
			t.Fatalf("frame %d: Last() = %p, want the frame the subscribers got, %p", i, last, first)
		}
	}
	st := b.Stats()
	if st.Frames != 4 || st.Dropped != 0 || st.Viewers != 3 || !st.Running || st.Last == nil || st.Last.Seq != 4 {
		t.Errorf("Stats() = %+v, want 4 frames, 0 dropped, 3 viewers, running, last Seq 4", st)
	}
	if n := len(b.Viewers()); n != 3 {
		t.Errorf("len(Viewers()) = %d, want 3", n)
	}
	nothingOn(t, fd.started, "a second Run while the first is fine")
}

func TestBroadcasterNewestWins(t *testing.T) {
	fd := newFeed()
	b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
	slow := subscribe(t, b, "slow")
	fast := subscribe(t, b, "fast")
	waitFor(t, fd.started, 1, "source start")

	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("frame %d", i)
		fd.emit(t, frame(name)) // fails if the producer waits for the slow subscriber
		expect(t, recv(t, fast), name, uint64(i))
	}

	expect(t, recv(t, slow), "frame 5", 5) // the newest, and only it
	nothingOn(t, slow.Frames(), "slow subscriber after reading the newest frame")
	if d := slow.Stats().Dropped; d != 4 {
		t.Errorf("slow.Stats().Dropped = %d, want 4", d)
	}
	if d := fast.Stats().Dropped; d != 0 {
		t.Errorf("fast.Stats().Dropped = %d, want 0", d)
	}
	if st := b.Stats(); st.Dropped != 4 || st.Frames != 5 {
		t.Errorf("broadcaster Stats() dropped %d, frames %d; want 4 and 5", st.Dropped, st.Frames)
	}
}

func TestBroadcasterJoinerGetsLastFrame(t *testing.T) {
	fd := newFeed()
	b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
	first := subscribe(t, b, "first")
	waitFor(t, fd.started, 1, "source start")
	fd.emit(t, frame("one"))
	fd.emit(t, frame("two"))
	f2 := recv(t, first)
	expect(t, f2, "two", 2)

	late := subscribe(t, b, "late")
	select {
	case got := <-late.Frames():
		if got != f2 {
			t.Fatalf("joiner got %q Seq %d, want the frame the first viewer got", got.JPEG, got.Seq)
		}
	default:
		t.Fatal("joiner's slot is empty right after Subscribe")
	}
	if got := b.Last(); got != f2 {
		t.Errorf("Last() = %v, want the last frame", got)
	}
	nothingOn(t, fd.started, "joining a running source starts another Run")
}

// TestBroadcasterPublishedFrameNeverChanges: a frame a viewer holds stays as
// it was, even when the source emits the same *Frame again (an unchanged
// picture, say).
func TestBroadcasterPublishedFrameNeverChanges(t *testing.T) {
	fd := newFeed()
	b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
	s := subscribe(t, b, "v")
	waitFor(t, fd.started, 1, "source start")
	f := frame("same picture")
	fd.emit(t, f)
	held := recv(t, s)
	expect(t, held, "same picture", 1)
	data := &held.JPEG[0]

	fd.emit(t, f)
	expect(t, recv(t, s), "same picture", 2)
	if held.Seq != 1 || &held.JPEG[0] != data {
		t.Fatalf("broadcaster.go publish writes Seq, JPEG and part into the emitted *Frame itself, so "+
			"re-emitting a frame rewrites one viewers already hold (Seq 1 became %d, JPEG moved to a new copy: %v); "+
			"with viewers sending it concurrently that is a data race", held.Seq, &held.JPEG[0] != data)
	}
}

func TestBroadcasterIdleStop(t *testing.T) {
	t.Run("stops after the last viewer and restarts", func(t *testing.T) {
		fd := newFeed()
		b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{IdleStop: 50 * time.Millisecond})
		s1 := subscribe(t, b, "one")
		s2 := subscribe(t, b, "two")
		waitFor(t, fd.started, 1, "source start")
		fd.emit(t, frame("x"))

		s1.Close()
		s1.Close() // twice is harmless
		select {
		case <-s1.Done():
		default:
			t.Fatal("Done() still open after Close")
		}
		if st := b.Stats(); !st.Running || st.Viewers != 1 {
			t.Fatalf("with one viewer left: Stats() = %+v, want running with 1 viewer", st)
		}
		s2.Close()
		waitFor(t, fd.ended, 1, "source ctx cancelled after the last viewer left")
		if st := b.Stats(); st.Running || st.Viewers != 0 || st.Last != nil {
			t.Fatalf("after idle stop: Stats() = %+v, want not running, 0 viewers, no last frame", st)
		}

		s3 := subscribe(t, b, "three")
		waitFor(t, fd.started, 2, "new subscriber restarts the source")
		nothingOn(t, s3.Frames(), "frame of the stopped run given to a new viewer")
		fd.emit(t, frame("after restart"))
		expect(t, recv(t, s3), "after restart", 2)
	})

	t.Run("a viewer returning within IdleStop keeps the run", func(t *testing.T) {
		const idle = 100 * time.Millisecond
		fd := newFeed()
		b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{IdleStop: idle})
		s1 := subscribe(t, b, "one")
		waitFor(t, fd.started, 1, "source start")
		fd.emit(t, frame("kept"))
		s1.Close() // the idle timer starts
		s2 := subscribe(t, b, "two")
		expect(t, recv(t, s2), "kept", 1) // the running source's last frame

		// Well past IdleStop: a timer Subscribe failed to cancel has fired by now.
		time.Sleep(4 * idle)
		nothingOn(t, fd.ended, "run stopped although a viewer came back within IdleStop")
		nothingOn(t, fd.started, "second Run although the first kept going")
		if st := b.Stats(); !st.Running || st.Viewers != 1 {
			t.Fatalf("%v after the viewer came back: Stats() = %+v, want running with 1 viewer", 4*idle, st)
		}
		// The same Run still publishes to the viewer, and numbering goes on.
		fd.emit(t, frame("same run"))
		expect(t, recv(t, s2), "same run", 2)

		// The idle timer is reset, not lost: the next last viewer leaving stops the run.
		s2.Close()
		waitFor(t, fd.ended, 1, "source ctx cancelled after the returning viewer left too")
		if st := b.Stats(); st.Running {
			t.Fatalf("after idle stop: Stats() = %+v, want not running", st)
		}
	})
}

func TestBroadcasterPause(t *testing.T) {
	t.Run("pause stops and resume restarts while watched", func(t *testing.T) {
		fd := newFeed()
		b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
		s := subscribe(t, b, "v")
		waitFor(t, fd.started, 1, "source start")
		fd.emit(t, frame("before pause"))
		recv(t, s)

		b.SetPaused(true)
		// SetPaused waits for the source, so its Run has already returned.
		waitFor(t, fd.ended, 1, "SetPaused(true) cancels the source")
		if st := b.Stats(); st.Running || !st.Paused || st.Viewers != 1 {
			t.Fatalf("paused: Stats() = %+v, want paused, not running, 1 viewer", st)
		}
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		if f, err := b.Snapshot(ctx); !errors.Is(err, stream.ErrPaused) {
			t.Fatalf("Snapshot while paused = %v, %v; want ErrPaused", f, err)
		}
		b.SetPaused(true) // no change, no new run
		nothingOn(t, fd.started, "pausing twice")
		// Running is set under the lock, so unlike a look at fd.started it
		// cannot miss a Run whose goroutine has not reached the source yet.
		if st := b.Stats(); st.Running || !st.Paused {
			t.Fatalf("paused twice: Stats() = %+v, want paused, not running", st)
		}

		b.SetPaused(false)
		waitFor(t, fd.started, 2, "SetPaused(false) restarts the source for the viewer")
		fd.emit(t, frame("after resume"))
		expect(t, recv(t, s), "after resume", 2)
	})

	t.Run("resume with nobody watching does not start", func(t *testing.T) {
		fd := newFeed()
		b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
		b.SetPaused(true)
		s := subscribe(t, b, "v")
		nothingOn(t, fd.started, "subscribing while paused")
		if st := b.Stats(); st.Running || !st.Paused || st.Viewers != 1 {
			t.Fatalf("subscribed while paused: Stats() = %+v, want paused, not running, 1 viewer", st)
		}
		s.Close()
		b.SetPaused(false)
		nothingOn(t, fd.started, "resuming with no viewers")
		if st := b.Stats(); st.Running || st.Paused {
			t.Fatalf("Stats() = %+v, want neither running nor paused", st)
		}
		subscribe(t, b, "w")
		waitFor(t, fd.started, 1, "a viewer after resume starts the source")
	})
}

func TestBroadcasterSetSource(t *testing.T) {
	t.Run("viewers move to the new source", func(t *testing.T) {
		// old emits one more frame on its way out, after being replaced.
		var oldEmit func(*stream.Frame)
		oldRuns := make(chan int, 4)
		old := stream.SourceFunc(func(ctx context.Context, emit func(*stream.Frame)) error {
			oldEmit = emit
			oldRuns <- 1
			emit(frame("old 1"))
			<-ctx.Done()
			emit(frame("old, stale"))
			return nil
		})
		b := newBroadcaster(t, old, stream.BroadcasterOptions{})
		s := subscribe(t, b, "v")
		expect(t, recv(t, s), "old 1", 1)

		fd := newFeed()
		b.SetSource(fd.Source()) // waits for the old Run, so its stale emit is done
		waitFor(t, fd.started, 1, "new source starts for the existing viewer")
		select {
		case <-s.Done():
			t.Fatal("SetSource ended the subscription")
		default:
		}
		nothingOn(t, s.Frames(), "frame from the replaced source")
		oldEmit(frame("old, very stale")) // a source that keeps emitting after Run returned
		nothingOn(t, s.Frames(), "frame from the replaced source after its Run returned")

		fd.emit(t, frame("new 1"))
		expect(t, recv(t, s), "new 1", 2) // the stale frames took no Seq
		if st := b.Stats(); st.Frames != 2 || st.Last == nil || string(st.Last.JPEG) != "new 1" {
			t.Errorf("Stats() frames %d last %v; want 2 and the new source's frame", st.Frames, st.Last)
		}
		if n := len(oldRuns); n != 1 {
			t.Errorf("old source ran %d times, want once", n)
		}
	})

	t.Run("no viewers, no start", func(t *testing.T) {
		a, c := newFeed(), newFeed()
		b := newBroadcaster(t, a.Source(), stream.BroadcasterOptions{})
		b.SetSource(c.Source())
		nothingOn(t, a.started, "old source")
		nothingOn(t, c.started, "new source with nobody watching")
		if st := b.Stats(); st.Running {
			t.Fatalf("SetSource with nobody watching: Stats() = %+v, want not running", st)
		}
		subscribe(t, b, "v")
		waitFor(t, c.started, 1, "new source on first viewer")
		nothingOn(t, a.started, "old source on first viewer")
	})
}

func TestBroadcasterSourceErrorRetried(t *testing.T) {
	tests := []struct {
		name    string
		ret     error
		wantErr string
	}{
		{"error", errBoom, "boom"},
		{"nil before ctx ends", nil, "source ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan int32, 16)
			gate := make(chan *stream.Frame)
			var runs atomic.Int32
			src := stream.SourceFunc(func(ctx context.Context, emit func(*stream.Frame)) error {
				n := runs.Add(1)
				started <- n
				if n == 1 {
					return tt.ret
				}
				select {
				case f := <-gate:
					emit(f)
				case <-ctx.Done():
					return nil
				}
				<-ctx.Done()
				return nil
			})
			b := newBroadcaster(t, src, stream.BroadcasterOptions{Retry: 5 * time.Millisecond})
			s := subscribe(t, b, "v")
			waitFor(t, started, 1, "first Run")
			waitFor(t, started, 2, "Run retried after failing")

			st := b.Stats()
			if st.Err == nil || st.Err.Error() != tt.wantErr {
				t.Fatalf("Stats().Err = %v, want %q", st.Err, tt.wantErr)
			}
			if tt.ret != nil && !errors.Is(st.Err, tt.ret) {
				t.Errorf("Stats().Err = %v, does not wrap %v", st.Err, tt.ret)
			}
			if !st.Running {
				t.Error("Stats().Running = false while retrying")
			}

			select {
			case gate <- frame("recovered"):
			case <-time.After(patience):
				t.Fatal("second Run did not take its frame")
			}
			expect(t, recv(t, s), "recovered", 1)
			if err := b.Stats().Err; err != nil {
				t.Errorf("Stats().Err = %v after a frame, want nil", err)
			}
		})
	}
}

func TestBroadcasterClose(t *testing.T) {
	fd := newFeed()
	b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
	subs := []*stream.Subscriber{subscribe(t, b, "a"), subscribe(t, b, "b")}
	waitFor(t, fd.started, 1, "source start")
	fd.emit(t, frame("x"))

	b.Close()
	for i, s := range subs {
		select {
		case <-s.Done():
		default:
			t.Errorf("subscriber %d: Done() open after Close", i)
		}
	}
	// Close waits for the source: its Run has returned already.
	select {
	case <-fd.ended:
	default:
		t.Fatal("Close returned before the source's Run did")
	}
	if st := b.Stats(); st.Running || st.Viewers != 0 {
		t.Errorf("Stats() after Close = %+v, want not running, 0 viewers", st)
	}

	if s, err := b.Subscribe(stream.ViewerInfo{}); !errors.Is(err, stream.ErrClosed) || s != nil {
		t.Errorf("Subscribe after Close = %v, %v; want nil, ErrClosed", s, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	if _, err := b.Snapshot(ctx); !errors.Is(err, stream.ErrClosed) {
		t.Errorf("Snapshot after Close = %v, want ErrClosed", err)
	}
	// None of these may restart anything or block.
	b.SetPaused(true)
	b.SetPaused(false)
	other := newFeed()
	b.SetSource(other.Source())
	subs[0].Close()
	if st := b.Stats(); st.Running || st.Viewers != 0 {
		t.Errorf("Stats() after SetPaused and SetSource on a closed broadcaster = %+v, want not running, 0 viewers", st)
	}
	b.Close()
	nothingOn(t, fd.started, "source after Close")
	nothingOn(t, other.started, "source set after Close")
	if st := b.Stats(); st.Running || st.Viewers != 0 {
		t.Errorf("Stats() after a second Close = %+v, want not running, 0 viewers", st)
	}
}

func TestBroadcasterSnapshot(t *testing.T) {
	t.Run("nobody watching starts the source", func(t *testing.T) {
		fd := newFeed()
		fd.first = func() *stream.Frame { return frame("first") }
		b := newBroadcaster(t, fd.Source(), stream.BroadcasterOptions{})
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		f, err := b.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		expect(t, f, "first", 1)
		if st := b.Stats(); st.Viewers != 0 {
			t.Errorf("Viewers = %d after Snapshot, want 0", st.Viewers)
		}
		// While the source runs on, a second snapshot is its last frame.
		if g, err := b.Snapshot(ctx); err != nil || g != f {
			t.Errorf("second Snapshot = %v, %v; want the same frame", g, err)
		}
	})

	t.Run("failing source reports its error", func(t *testing.T) {
		ran := make(chan struct{}, 64)
		src := stream.SourceFunc(func(ctx context.Context, emit func(*stream.Frame)) error {
			ran <- struct{}{}
			return errBoom
		})
		b := newBroadcaster(t, src, stream.BroadcasterOptions{Retry: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := b.Snapshot(ctx)
			errc <- err
		}()
		select {
		case <-ran:
		case <-time.After(patience):
			t.Fatal("Snapshot did not start the source")
		}
		eventually(t, "Stats().Err set", func() bool { return b.Stats().Err != nil })
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, errBoom) {
				t.Fatalf("Snapshot = %v, want the source's error", err)
			}
		case <-time.After(patience):
			t.Fatal("Snapshot ignored its cancelled context")
		}
	})
}
