package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

var errBoom = errors.New("boom")

const patience = testenv.Patience

type feed = testenv.Feed[*media.Frame]

func newFeed() *feed { return testenv.NewFeed[*media.Frame]() }

// recv takes one frame from sub, waiting at most patience.
func recv(t *testing.T, sub *fanout.Subscriber[*media.Frame]) *media.Frame {
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

func frame(name string) *media.Frame { return &media.Frame{Data: []byte(name)} }

// stamp publishes a numbered copy of f, as a track's Prepare does: the
// source may emit the same frame again, and the one subscribers hold must
// never change.
func stamp(f *media.Frame, seq uint64) *media.Frame {
	nf := *f
	nf.Seq = seq
	return &nf
}

// expect checks that got is the frame emitted as name, published as seq.
// Frames are told apart by their bytes, not by the pointer the source
// emitted: the hub may publish its own copy of the Frame struct.
func expect(t *testing.T, got *media.Frame, name string, seq uint64) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no frame, want %q Seq %d", name, seq)
	}
	if string(got.Data) != name || got.Seq != seq {
		t.Fatalf("got %q Seq %d, want %q Seq %d", got.Data, got.Seq, name, seq)
	}
}

// newHub is a video hub as the engine makes one: a slot of one, the newest
// frame replayed to a joiner, each published frame a numbered copy.
func newHub(t *testing.T, src fanout.Source[*media.Frame], opt fanout.Options[*media.Frame]) *fanout.Hub[*media.Frame] {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	opt.Replay, opt.Prepare = true, stamp
	b := fanout.New(src, opt)
	t.Cleanup(b.Close)
	return b
}

func subscribe(t *testing.T, b *fanout.Hub[*media.Frame], id string) *fanout.Subscriber[*media.Frame] {
	t.Helper()
	s, err := b.Subscribe(fanout.SubscriberInfo{ID: id})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", id, err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestHubFanOut(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{})
	subs := []*fanout.Subscriber[*media.Frame]{subscribe(t, b, "a"), subscribe(t, b, "b"), subscribe(t, b, "c")}
	testenv.WaitRun(t, fd.Started, 1, "first subscriber starts the source")

	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("frame %d", i)
		fd.Emit(t, frame(name))
		var first *media.Frame
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
			if &got.Data[0] != &first.Data[0] {
				t.Fatalf("frame %d: subscriber %d got a copy of the bytes", i, j)
			}
		}
		if last := b.Last(); last != first {
			t.Fatalf("frame %d: Last() = %p, want the frame the subscribers got, %p", i, last, first)
		}
	}
	st := b.Stats()
	if st.Frames != 4 || st.Dropped != 0 || st.Subscribers != 3 || !st.Running || st.Last == nil || st.Last.Seq != 4 {
		t.Errorf("Stats() = %+v, want 4 frames, 0 dropped, 3 subscribers, running, last Seq 4", st)
	}
	if n := len(b.Subscribers()); n != 3 {
		t.Errorf("len(Viewers()) = %d, want 3", n)
	}
	testenv.NothingOn(t, fd.Started, "a second Run while the first is fine")
}

func TestHubNewestWins(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{})
	slow := subscribe(t, b, "slow")
	fast := subscribe(t, b, "fast")
	testenv.WaitRun(t, fd.Started, 1, "source start")

	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("frame %d", i)
		fd.Emit(t, frame(name)) // fails if the producer waits for the slow subscriber
		expect(t, recv(t, fast), name, uint64(i))
	}

	expect(t, recv(t, slow), "frame 5", 5) // the newest, and only it
	testenv.NothingOn(t, slow.Frames(), "slow subscriber after reading the newest frame")
	if d := slow.Stats().Dropped; d != 4 {
		t.Errorf("slow.Stats().Dropped = %d, want 4", d)
	}
	if d := fast.Stats().Dropped; d != 0 {
		t.Errorf("fast.Stats().Dropped = %d, want 0", d)
	}
	if st := b.Stats(); st.Dropped != 4 || st.Frames != 5 {
		t.Errorf("hub Stats() dropped %d, frames %d; want 4 and 5", st.Dropped, st.Frames)
	}
}

func TestHubJoinerGetsLastFrame(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{})
	first := subscribe(t, b, "first")
	testenv.WaitRun(t, fd.Started, 1, "source start")
	fd.Emit(t, frame("one"))
	fd.Emit(t, frame("two"))
	f2 := recv(t, first)
	expect(t, f2, "two", 2)

	late := subscribe(t, b, "late")
	select {
	case got := <-late.Frames():
		if got != f2 {
			t.Fatalf("joiner got %q Seq %d, want the frame the first subscriber got", got.Data, got.Seq)
		}
	default:
		t.Fatal("joiner's slot is empty right after Subscribe")
	}
	if got := b.Last(); got != f2 {
		t.Errorf("Last() = %v, want the last frame", got)
	}
	testenv.NothingOn(t, fd.Started, "joining a running source starts another Run")
}

// TestHubPublishedFrameNeverChanges: the hub publishes Prepare's result, so
// a frame a subscriber holds stays as it was, even when the source emits the
// same *Frame again (an unchanged picture, say).
func TestHubPublishedFrameNeverChanges(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{})
	s := subscribe(t, b, "v")
	testenv.WaitRun(t, fd.Started, 1, "source start")
	f := frame("same picture")
	fd.Emit(t, f)
	held := recv(t, s)
	expect(t, held, "same picture", 1)
	data := &held.Data[0]

	fd.Emit(t, f)
	expect(t, recv(t, s), "same picture", 2)
	if held.Seq != 1 || &held.Data[0] != data {
		t.Fatalf("the hub publishes into the emitted *Frame itself instead of Prepare's copy, so "+
			"re-emitting a frame rewrites one subscribers already hold (Seq 1 became %d, Data moved to a new copy: %v); "+
			"with subscribers sending it concurrently that is a data race", held.Seq, &held.Data[0] != data)
	}
}

func TestHubIdleStop(t *testing.T) {
	t.Run("stops after the last subscriber and restarts", func(t *testing.T) {
		fd := newFeed()
		b := newHub(t, fd, fanout.Options[*media.Frame]{IdleStop: 50 * time.Millisecond})
		s1 := subscribe(t, b, "one")
		s2 := subscribe(t, b, "two")
		testenv.WaitRun(t, fd.Started, 1, "source start")
		fd.Emit(t, frame("x"))

		s1.Close()
		s1.Close() // twice is harmless
		select {
		case <-s1.Done():
		default:
			t.Fatal("Done() still open after Close")
		}
		if st := b.Stats(); !st.Running || st.Subscribers != 1 {
			t.Fatalf("with one subscriber left: Stats() = %+v, want running with 1 subscriber", st)
		}
		s2.Close()
		testenv.WaitRun(t, fd.Ended, 1, "source ctx cancelled after the last subscriber left")
		if st := b.Stats(); st.Running || st.Subscribers != 0 || st.Last != nil {
			t.Fatalf("after idle stop: Stats() = %+v, want not running, 0 subscribers, no last frame", st)
		}

		s3 := subscribe(t, b, "three")
		testenv.WaitRun(t, fd.Started, 2, "new subscriber restarts the source")
		testenv.NothingOn(t, s3.Frames(), "frame of the stopped run given to a new subscriber")
		fd.Emit(t, frame("after restart"))
		expect(t, recv(t, s3), "after restart", 2)
	})

	t.Run("a subscriber returning within IdleStop keeps the run", func(t *testing.T) {
		const idle = 100 * time.Millisecond
		fd := newFeed()
		b := newHub(t, fd, fanout.Options[*media.Frame]{IdleStop: idle})
		s1 := subscribe(t, b, "one")
		testenv.WaitRun(t, fd.Started, 1, "source start")
		fd.Emit(t, frame("kept"))
		s1.Close() // the idle timer starts
		s2 := subscribe(t, b, "two")
		expect(t, recv(t, s2), "kept", 1) // the running source's last frame

		// Well past IdleStop: a timer Subscribe failed to cancel has fired by now.
		time.Sleep(4 * idle)
		testenv.NothingOn(t, fd.Ended, "run stopped although a subscriber came back within IdleStop")
		testenv.NothingOn(t, fd.Started, "second Run although the first kept going")
		if st := b.Stats(); !st.Running || st.Subscribers != 1 {
			t.Fatalf("%v after the subscriber came back: Stats() = %+v, want running with 1 subscriber", 4*idle, st)
		}
		// The same Run still publishes to the subscriber, and numbering goes on.
		fd.Emit(t, frame("same run"))
		expect(t, recv(t, s2), "same run", 2)

		// The idle timer is reset, not lost: the next last subscriber leaving stops the run.
		s2.Close()
		testenv.WaitRun(t, fd.Ended, 1, "source ctx cancelled after the returning subscriber left too")
		if st := b.Stats(); st.Running {
			t.Fatalf("after idle stop: Stats() = %+v, want not running", st)
		}
	})
}

func TestHubPause(t *testing.T) {
	t.Run("pause stops and resume restarts while watched", func(t *testing.T) {
		fd := newFeed()
		b := newHub(t, fd, fanout.Options[*media.Frame]{})
		s := subscribe(t, b, "v")
		testenv.WaitRun(t, fd.Started, 1, "source start")
		fd.Emit(t, frame("before pause"))
		recv(t, s)

		b.SetPaused(true)
		// SetPaused waits for the source, so its Run has already returned.
		testenv.WaitRun(t, fd.Ended, 1, "SetPaused(true) cancels the source")
		if st := b.Stats(); st.Running || !st.Paused || st.Subscribers != 1 {
			t.Fatalf("paused: Stats() = %+v, want paused, not running, 1 subscriber", st)
		}
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		if f, err := b.Snapshot(ctx); !errors.Is(err, fanout.ErrPaused) {
			t.Fatalf("Snapshot while paused = %v, %v; want ErrPaused", f, err)
		}
		b.SetPaused(true) // no change, no new run
		testenv.NothingOn(t, fd.Started, "pausing twice")
		// Running is set under the lock, so unlike a look at fd.Started it
		// cannot miss a Run whose goroutine has not reached the source yet.
		if st := b.Stats(); st.Running || !st.Paused {
			t.Fatalf("paused twice: Stats() = %+v, want paused, not running", st)
		}

		b.SetPaused(false)
		testenv.WaitRun(t, fd.Started, 2, "SetPaused(false) restarts the source for the subscriber")
		fd.Emit(t, frame("after resume"))
		expect(t, recv(t, s), "after resume", 2)
	})

	t.Run("resume with nobody watching does not start", func(t *testing.T) {
		fd := newFeed()
		b := newHub(t, fd, fanout.Options[*media.Frame]{})
		b.SetPaused(true)
		s := subscribe(t, b, "v")
		testenv.NothingOn(t, fd.Started, "subscribing while paused")
		if st := b.Stats(); st.Running || !st.Paused || st.Subscribers != 1 {
			t.Fatalf("subscribed while paused: Stats() = %+v, want paused, not running, 1 subscriber", st)
		}
		s.Close()
		b.SetPaused(false)
		testenv.NothingOn(t, fd.Started, "resuming with no subscribers")
		if st := b.Stats(); st.Running || st.Paused {
			t.Fatalf("Stats() = %+v, want neither running nor paused", st)
		}
		subscribe(t, b, "w")
		testenv.WaitRun(t, fd.Started, 1, "a subscriber after resume starts the source")
	})
}

func TestHubSetSource(t *testing.T) {
	t.Run("subscribers move to the new source", func(t *testing.T) {
		// old emits one more frame on its way out, after being replaced.
		var oldEmit func(*media.Frame)
		oldRuns := make(chan int, 4)
		old := fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error {
			oldEmit = emit
			oldRuns <- 1
			emit(frame("old 1"))
			<-ctx.Done()
			emit(frame("old, stale"))
			return nil
		})
		b := newHub(t, old, fanout.Options[*media.Frame]{})
		s := subscribe(t, b, "v")
		expect(t, recv(t, s), "old 1", 1)

		fd := newFeed()
		b.SetSource(fd) // waits for the old Run, so its stale emit is done
		testenv.WaitRun(t, fd.Started, 1, "new source starts for the existing subscriber")
		select {
		case <-s.Done():
			t.Fatal("SetSource ended the subscription")
		default:
		}
		testenv.NothingOn(t, s.Frames(), "frame from the replaced source")
		oldEmit(frame("old, very stale")) // a source that keeps emitting after Run returned
		testenv.NothingOn(t, s.Frames(), "frame from the replaced source after its Run returned")

		fd.Emit(t, frame("new 1"))
		expect(t, recv(t, s), "new 1", 2) // the stale frames took no Seq
		if st := b.Stats(); st.Frames != 2 || st.Last == nil || string(st.Last.Data) != "new 1" {
			t.Errorf("Stats() frames %d last %v; want 2 and the new source's frame", st.Frames, st.Last)
		}
		if n := len(oldRuns); n != 1 {
			t.Errorf("old source ran %d times, want once", n)
		}
	})

	t.Run("no subscribers, no start", func(t *testing.T) {
		a, c := newFeed(), newFeed()
		b := newHub(t, a, fanout.Options[*media.Frame]{})
		b.SetSource(c)
		testenv.NothingOn(t, a.Started, "old source")
		testenv.NothingOn(t, c.Started, "new source with nobody watching")
		if st := b.Stats(); st.Running {
			t.Fatalf("SetSource with nobody watching: Stats() = %+v, want not running", st)
		}
		subscribe(t, b, "v")
		testenv.WaitRun(t, c.Started, 1, "new source on first subscriber")
		testenv.NothingOn(t, a.Started, "old source on first subscriber")
	})
}

func TestHubSourceErrorRetried(t *testing.T) {
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
			gate := make(chan *media.Frame)
			var runs atomic.Int32
			src := fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error {
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
			b := newHub(t, src, fanout.Options[*media.Frame]{Retry: 5 * time.Millisecond})
			s := subscribe(t, b, "v")
			testenv.WaitRun(t, started, 1, "first Run")
			testenv.WaitRun(t, started, 2, "Run retried after failing")

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

func TestHubClose(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{})
	subs := []*fanout.Subscriber[*media.Frame]{subscribe(t, b, "a"), subscribe(t, b, "b")}
	testenv.WaitRun(t, fd.Started, 1, "source start")
	fd.Emit(t, frame("x"))

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
	case <-fd.Ended:
	default:
		t.Fatal("Close returned before the source's Run did")
	}
	if st := b.Stats(); st.Running || st.Subscribers != 0 {
		t.Errorf("Stats() after Close = %+v, want not running, 0 subscribers", st)
	}

	if s, err := b.Subscribe(fanout.SubscriberInfo{}); !errors.Is(err, fanout.ErrClosed) || s != nil {
		t.Errorf("Subscribe after Close = %v, %v; want nil, ErrClosed", s, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	if _, err := b.Snapshot(ctx); !errors.Is(err, fanout.ErrClosed) {
		t.Errorf("Snapshot after Close = %v, want ErrClosed", err)
	}
	// None of these may restart anything or block.
	b.SetPaused(true)
	b.SetPaused(false)
	other := newFeed()
	b.SetSource(other)
	subs[0].Close()
	if st := b.Stats(); st.Running || st.Subscribers != 0 {
		t.Errorf("Stats() after SetPaused and SetSource on a closed hub = %+v, want not running, 0 subscribers", st)
	}
	b.Close()
	testenv.NothingOn(t, fd.Started, "source after Close")
	testenv.NothingOn(t, other.Started, "source set after Close")
	if st := b.Stats(); st.Running || st.Subscribers != 0 {
		t.Errorf("Stats() after a second Close = %+v, want not running, 0 subscribers", st)
	}
}

func TestHubSnapshot(t *testing.T) {
	t.Run("nobody watching starts the source", func(t *testing.T) {
		fd := newFeed()
		fd.First = func() *media.Frame { return frame("first") }
		b := newHub(t, fd, fanout.Options[*media.Frame]{})
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		f, err := b.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		expect(t, f, "first", 1)
		if st := b.Stats(); st.Subscribers != 0 {
			t.Errorf("Viewers = %d after Snapshot, want 0", st.Subscribers)
		}
		// While the source runs on, a second snapshot is its last frame.
		if g, err := b.Snapshot(ctx); err != nil || g != f {
			t.Errorf("second Snapshot = %v, %v; want the same frame", g, err)
		}
	})

	t.Run("failing source reports its error", func(t *testing.T) {
		ran := make(chan struct{}, 64)
		src := fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error {
			ran <- struct{}{}
			return errBoom
		})
		b := newHub(t, src, fanout.Options[*media.Frame]{Retry: time.Hour})
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
		testenv.Eventually(t, "Stats().Err set", func() bool { return b.Stats().Err != nil })
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

// A direct subscriber is called with every item in order, in the source's
// goroutine (Emit returns after the call), beside a queued one; it starts
// and keeps the source like any subscriber, and is never called once Close
// has returned.
func TestHubSubscribeFunc(t *testing.T) {
	fd := newFeed()
	b := newHub(t, fd, fanout.Options[*media.Frame]{IdleStop: time.Millisecond})
	var got []string // only the source's goroutine appends, and Emit waits for it
	var mu atomic.Bool
	direct, err := b.SubscribeFunc(fanout.SubscriberInfo{ID: "direct"}, func(f *media.Frame) {
		if !mu.CompareAndSwap(false, true) {
			t.Error("two calls at once")
		}
		got = append(got, string(f.Data))
		mu.Store(false)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitRun(t, fd.Started, 1, "a direct subscriber starts the source")
	if direct.Frames() != nil {
		t.Error("a direct subscriber has a queue")
	}
	queued := subscribe(t, b, "queued")
	for i := 1; i <= 5; i++ {
		fd.Emit(t, frame(fmt.Sprintf("frame %d", i)))
		expect(t, recv(t, queued), fmt.Sprintf("frame %d", i), uint64(i))
	}
	queued.Close()
	testenv.NothingOn(t, fd.Ended, "the source stopping while a direct subscriber remains")
	direct.Close()
	testenv.WaitRun(t, fd.Ended, 1, "the source after the last subscriber")
	if want := []string{"frame 1", "frame 2", "frame 3", "frame 4", "frame 5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("direct subscriber got %q, want %q", got, want)
	}
	if st := direct.Stats(); st.Frames != 5 {
		t.Errorf("direct subscriber's stats: %+v, want 5 frames", st)
	}
}
