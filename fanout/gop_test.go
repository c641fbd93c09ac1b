package fanout_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// gopHub is an in-order hub as a WebRTC track makes one, keeping its group
// of pictures for joiners; it counts the keyframes it asks for.
func gopHub(t *testing.T, queue, gop, gopBytes int) (*fanout.Hub[*media.Frame], *feed, *atomic.Int32) {
	t.Helper()
	fd := newFeed()
	var asked atomic.Int32
	b := fanout.New(fanout.Source[*media.Frame](fd), fanout.Options[*media.Frame]{
		Logger: quiet, Queue: queue, GOP: gop, GOPBytes: gopBytes, Prepare: stamp,
		Size:         func(f *media.Frame) int { return len(f.Data) },
		Keyframe:     func(f *media.Frame) bool { return f.Keyframe },
		NeedKeyframe: func() { asked.Add(1) },
	})
	t.Cleanup(b.Close)
	return b, fd, &asked
}

func keyframe(name string) *media.Frame { return &media.Frame{Data: []byte(name), Keyframe: true} }

// A joiner gets the group of pictures from the newest keyframe at once, in
// order, then the live frames; nobody asks for a keyframe for it.
func TestHubGOPReplay(t *testing.T) {
	b, fd, asked := gopHub(t, 4, 8, 0)
	a := subscribe(t, b, "a")
	testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
	if asked.Load() != 1 {
		t.Fatalf("the first subscriber asked for %d keyframes, want 1 (there is no group yet)", asked.Load())
	}
	fd.Emit(t, frame("p0")) // before any keyframe: not kept, not sent
	fd.Emit(t, keyframe("k1"))
	fd.Emit(t, frame("p2"))
	fd.Emit(t, frame("p3"))
	for i, name := range []string{"k1", "p2", "p3"} {
		expect(t, recv(t, a), name, uint64(i+2))
	}
	j := subscribe(t, b, "joiner")
	fd.Emit(t, frame("p4"))
	for i, name := range []string{"k1", "p2", "p3", "p4"} {
		expect(t, recv(t, j), name, uint64(i+2))
	}
	expect(t, recv(t, a), "p4", 5)
	if asked.Load() != 1 {
		t.Fatalf("the joiner asked for a keyframe (%d requests in all)", asked.Load())
	}
	// A new keyframe starts a new group: the next joiner starts there.
	fd.Emit(t, keyframe("k6"))
	fd.Emit(t, frame("p7"))
	k := subscribe(t, b, "second joiner")
	expect(t, recv(t, k), "k6", 6)
	expect(t, recv(t, k), "p7", 7)
	if st := b.Stats(); st.Dropped != 0 {
		t.Fatalf("%d frames dropped", st.Dropped)
	}
}

// A replayed group longer than the queue does not count as falling behind
// while it drains; a subscriber that then falls a whole queue behind still
// waits for a keyframe.
func TestHubGOPReplayLongerThanQueue(t *testing.T) {
	b, fd, asked := gopHub(t, 2, 8, 0)
	a := subscribe(t, b, "a")
	testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
	fd.Emit(t, keyframe("k"))
	recv(t, a)
	for i := range 5 {
		fd.Emit(t, frame(fmt.Sprintf("p%d", i)))
		recv(t, a)
	}
	j := subscribe(t, b, "joiner") // 6 frames replayed, queue of 2
	fd.Emit(t, frame("p5"))
	fd.Emit(t, frame("p6"))
	want := []string{"k", "p0", "p1", "p2", "p3", "p4", "p5", "p6"}
	for i, name := range want {
		expect(t, recv(t, j), name, uint64(i+1))
	}
	a.Close()
	n := asked.Load()
	// Now j has read everything: three more unread frames overflow its queue of 2.
	for i := range 3 {
		fd.Emit(t, frame(fmt.Sprintf("q%d", i)))
	}
	if asked.Load() != n+1 {
		t.Fatalf("a subscriber 3 frames behind a queue of 2: %d keyframe requests, want 1", asked.Load()-n)
	}
	if st := j.Stats(); st.Dropped != 3 {
		t.Fatalf("joiner dropped %d, want 3", st.Dropped)
	}
}

// A group past its bounds is forgotten: a joiner then waits for the next
// keyframe, and asks for it.
func TestHubGOPBounds(t *testing.T) {
	for _, tc := range []struct {
		name          string
		gop, gopBytes int
		frames        int
		replay        bool
	}{
		{"within both", 4, 100, 3, true},
		{"as many frames as allowed", 4, 0, 4, true},
		{"too many frames", 4, 0, 5, false},
		{"too many bytes", 16, 10, 6, false},
		{"no GOP", 0, 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, fd, asked := gopHub(t, 16, tc.gop, tc.gopBytes)
			a := subscribe(t, b, "a")
			testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
			fd.Emit(t, keyframe("k0"))
			for i := 1; i < tc.frames; i++ {
				fd.Emit(t, frame(fmt.Sprintf("p%d", i)))
			}
			for range tc.frames {
				recv(t, a)
			}
			n := asked.Load()
			j := subscribe(t, b, "joiner")
			if tc.replay {
				expect(t, recv(t, j), "k0", 1)
				if asked.Load() != n {
					t.Fatal("a joiner given the group asked for a keyframe")
				}
				return
			}
			if asked.Load() != n+1 {
				t.Fatalf("a joiner without a group: %d keyframe requests, want 1", asked.Load()-n)
			}
			fd.Emit(t, frame("late"))
			fd.Emit(t, keyframe("k"))
			expect(t, recv(t, j), "k", uint64(tc.frames+2))
		})
	}
}

// A stopped source's group is stale: after a restart a joiner waits for the
// new source's keyframe.
func TestHubGOPForgottenOnStop(t *testing.T) {
	b, fd, _ := gopHub(t, 4, 8, 0)
	a := subscribe(t, b, "a")
	testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
	fd.Emit(t, keyframe("k"))
	recv(t, a)
	b.SetPaused(true)
	b.SetPaused(false)
	testenv.WaitRun(t, fd.Started, 2, "resume restarts the source")
	j := subscribe(t, b, "joiner")
	fd.Emit(t, frame("p"))
	fd.Emit(t, keyframe("k2"))
	expect(t, recv(t, j), "k2", 3)
}

// A droppable frame stays in the group only while it is the newest: a
// joiner is replayed the reference frames and the screen as it is now.
func TestHubGOPLeavesOutDroppable(t *testing.T) {
	fd := newFeed()
	b := fanout.New(fanout.Source[*media.Frame](fd), fanout.Options[*media.Frame]{
		Logger: quiet, Queue: 8, GOP: 8, Prepare: stamp,
		Size:      func(f *media.Frame) int { return len(f.Data) },
		Keyframe:  func(f *media.Frame) bool { return f.Keyframe },
		Droppable: func(f *media.Frame) bool { return f.Droppable },
	})
	t.Cleanup(b.Close)
	a := subscribe(t, b, "a")
	testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
	drop := func(name string) *media.Frame { return &media.Frame{Data: []byte(name), Droppable: true} }
	for _, f := range []*media.Frame{keyframe("k"), drop("d1"), frame("p2"), drop("d3")} {
		fd.Emit(t, f)
		recv(t, a)
	}
	j := subscribe(t, b, "joiner")
	for i, name := range []string{"k", "p2", "d3"} { // d3 is the newest: the screen now
		expect(t, recv(t, j), name, []uint64{1, 3, 4}[i])
	}
	fd.Emit(t, frame("p4"))
	expect(t, recv(t, j), "p4", 5)
	k := subscribe(t, b, "second joiner")
	for i, name := range []string{"k", "p2", "p4"} {
		expect(t, recv(t, k), name, []uint64{1, 3, 5}[i])
	}
}

// Joiners are replayed the group while ReplayBudget allows; past it a
// joiner waits for a keyframe (and asks for one), which the others share.
func TestHubGOPReplayBudget(t *testing.T) {
	fd := newFeed()
	var asked atomic.Int32
	b := fanout.New(fanout.Source[*media.Frame](fd), fanout.Options[*media.Frame]{
		Logger: quiet, Queue: 8, GOP: 8, Prepare: stamp, ReplayBudget: 25,
		Size:         func(f *media.Frame) int { return len(f.Data) },
		Keyframe:     func(f *media.Frame) bool { return f.Keyframe },
		NeedKeyframe: func() { asked.Add(1) },
	})
	t.Cleanup(b.Close)
	a := subscribe(t, b, "a")
	testenv.WaitRun(t, fd.Started, 1, "the first subscriber starts the source")
	fd.Emit(t, keyframe("key-0")) // 5 bytes
	fd.Emit(t, frame("delta-1"))  // 7: a group of 12
	recv(t, a)
	recv(t, a)
	n := asked.Load()
	j1, j2, j3 := subscribe(t, b, "j1"), subscribe(t, b, "j2"), subscribe(t, b, "j3")
	expect(t, recv(t, j1), "key-0", 1) // 12 of 25
	expect(t, recv(t, j2), "key-0", 1) // 24 of 25
	if asked.Load() != n+1 {
		t.Fatalf("the third joiner, past the budget: %d keyframe requests, want 1", asked.Load()-n)
	}
	fd.Emit(t, frame("delta-2"))
	fd.Emit(t, keyframe("key-3"))
	expect(t, recv(t, j3), "key-3", 4)
}
