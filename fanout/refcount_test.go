package fanout_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
)

// counted is a reference-counted fake item, as *media.Picture is one: it
// counts its references and every misuse (a reference taken or given back
// after the last was gone).
type counted struct {
	name string
	refs atomic.Int32
	bad  *atomic.Int32 // shared by every item of a test
}

func (c *counted) Retain() *counted {
	if c.refs.Add(1) <= 1 {
		c.bad.Add(1) // retained after it was freed
	}
	return c
}

func (c *counted) Release() {
	if c.refs.Add(-1) < 0 {
		c.bad.Add(1) // released once too often
	}
}

func (c *counted) String() string { return c.name }

// ledger makes counted items and checks their counts.
type ledger struct {
	bad   atomic.Int32
	mu    sync.Mutex
	items []*counted
}

// item returns a new item holding one reference, its maker's.
func (l *ledger) item(name string) *counted {
	c := &counted{name: name, bad: &l.bad}
	c.refs.Store(1)
	l.mu.Lock()
	l.items = append(l.items, c)
	l.mu.Unlock()
	return c
}

// refs checks that c has exactly want references.
func refs(t *testing.T, c *counted, want int32, when string) {
	t.Helper()
	if got := c.refs.Load(); got != want {
		t.Fatalf("%s: %s holds %d references, want %d", when, c.name, got, want)
	}
}

// noneLeft checks that every item has been released as often as retained.
func (l *ledger) noneLeft(t *testing.T) {
	t.Helper()
	if n := l.bad.Load(); n != 0 {
		t.Errorf("%d retains of a freed item or releases of one too many", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.items {
		if n := c.refs.Load(); n != 0 {
			t.Errorf("%s still holds %d references", c.name, n)
		}
	}
}

// emit hands c to the feed's running source and gives back the maker's
// reference, as a grab loop does once emit returns.
func emit(t *testing.T, fd *testenv.Feed[*counted], c *counted) {
	t.Helper()
	fd.Emit(t, c)
	c.Release()
}

func countedHub(t *testing.T, src fanout.Source[*counted], opt fanout.Options[*counted]) *fanout.Hub[*counted] {
	t.Helper()
	opt.Logger = quiet
	h := fanout.New(src, opt)
	t.Cleanup(h.Close)
	return h
}

// TestHubReferenceCounts: every queued item and the newest one hold a
// reference of their own; what is pushed out, replaced, or still queued at
// the end is released; whoever gets an item from the hub owns a reference.
func TestHubReferenceCounts(t *testing.T) {
	var l ledger
	fd := testenv.NewFeed[*counted]()
	h := countedHub(t, fd, fanout.Options[*counted]{Queue: 2, Replay: true})
	slow, err := h.Subscribe(fanout.SubscriberInfo{ID: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitRun(t, fd.Started, 1, "source start")

	a, b, c := l.item("a"), l.item("b"), l.item("c")
	emit(t, fd, a)
	refs(t, a, 2, "a published") // the newest, and queued
	emit(t, fd, b)
	refs(t, a, 1, "b published") // queued only
	refs(t, b, 2, "b published")
	emit(t, fd, c) // pushes a out of the full queue
	refs(t, a, 0, "a pushed out and replaced")
	refs(t, b, 1, "c published")
	refs(t, c, 2, "c published")

	got := <-slow.Frames()
	if got != b {
		t.Fatalf("slow read %v, want b", got)
	}
	refs(t, b, 1, "b read") // the reader's own
	got.Release()
	refs(t, b, 0, "b released by its reader")

	late, err := h.Subscribe(fanout.SubscriberInfo{ID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	refs(t, c, 3, "c replayed to a joiner")
	late.Close() // c still in its queue
	refs(t, c, 2, "the joiner left without reading")

	last := h.Last()
	refs(t, c, 3, "Last")
	last.Release()
	st := h.Stats()
	refs(t, c, 3, "Stats")
	st.Last.Release()
	snap, err := h.Snapshot(t.Context())
	if err != nil || snap != c {
		t.Fatalf("Snapshot = %v, %v; want c", snap, err)
	}
	snap.Release()
	refs(t, c, 2, "after Last, Stats and Snapshot were released")

	slow.Close() // c still queued
	refs(t, c, 1, "slow left without reading")
	h.SetPaused(true) // the source stops: the newest item is stale
	refs(t, c, 0, "paused")
	h.SetPaused(false)
	h.Close()
	l.noneLeft(t)
}

// TestHubReferenceCountsClose: a hub that closes releases the newest item
// and what its subscribers never read.
func TestHubReferenceCountsClose(t *testing.T) {
	var l ledger
	fd := testenv.NewFeed[*counted]()
	h := countedHub(t, fd, fanout.Options[*counted]{Queue: 4})
	if _, err := h.Subscribe(fanout.SubscriberInfo{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	s, err := h.Subscribe(fanout.SubscriberInfo{ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitRun(t, fd.Started, 1, "source start")
	for i := range 3 {
		emit(t, fd, l.item(fmt.Sprint("x", i)))
	}
	h.Close()
	s.Close() // after the hub: nothing twice
	l.noneLeft(t)
}

// TestHubReferenceCountsPrepare: Prepare gets the hub's reference and
// returns one, here of a new item it makes in place of the emitted one.
func TestHubReferenceCountsPrepare(t *testing.T) {
	var l ledger
	fd := testenv.NewFeed[*counted]()
	var made []*counted
	h := countedHub(t, fd, fanout.Options[*counted]{Prepare: func(v *counted, seq uint64) *counted {
		w := l.item(fmt.Sprintf("%s#%d", v.name, seq))
		made = append(made, w) // Prepare runs under the hub's lock, one at a time
		v.Release()
		return w
	}})
	s, err := h.Subscribe(fanout.SubscriberInfo{ID: "v"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitRun(t, fd.Started, 1, "source start")
	raw := l.item("raw")
	raw.Retain() // the test's own, to look at it after emit
	emit(t, fd, raw)
	refs(t, raw, 1, "raw after Prepare replaced it") // only the test's
	got := <-s.Frames()
	if got != made[0] {
		t.Fatalf("got %v, want Prepare's %v", got, made[0])
	}
	refs(t, got, 2, "prepared item read") // the newest, and the reader's
	got.Release()
	raw.Release()
	h.Close()
	l.noneLeft(t)
}

// TestHubReferenceCountsConcurrent: subscribers that read, drop and leave
// while the source publishes leave every count at zero in the end.
func TestHubReferenceCountsConcurrent(t *testing.T) {
	var l ledger
	src := fanout.SourceFunc[*counted](func(ctx context.Context, emit func(*counted)) error {
		for i := 0; ctx.Err() == nil; i++ {
			c := l.item(fmt.Sprint("c", i))
			emit(c)
			c.Release()
		}
		return nil
	})
	h := countedHub(t, src, fanout.Options[*counted]{Queue: 3, Replay: true})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				s, err := h.Subscribe(fanout.SubscriberInfo{ID: fmt.Sprint(i, j)})
				if err != nil {
					return
				}
				for range j % 5 { // read a few, leave the rest queued
					select {
					case c := <-s.Frames():
						c.Release()
					case <-s.Done():
					}
				}
				if c := h.Last(); c != nil {
					c.Release()
				}
				s.Close()
			}
		}()
	}
	wg.Wait()
	h.Close()
	l.noneLeft(t)
}
