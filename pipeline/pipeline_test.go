package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
)

// screen is a picture source the test drives: each value sent on its channel
// becomes a picture whose first byte is that value.
type screen struct {
	pics  chan byte
	freed atomic.Int64 // pictures whose last reference was released
	made  atomic.Int64
}

func newScreen() *screen { return &screen{pics: make(chan byte)} }

func (s *screen) Run(ctx context.Context, emit func(*media.Picture)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case v := <-s.pics:
			s.made.Add(1)
			p := media.NewPicture([]byte{v, 0, 0, 0}, 1, 1, 4, media.BGRX, func() { s.freed.Add(1) })
			p.Captured = time.Now()
			emit(p)
		}
	}
}

// show puts value v on the screen, waiting until the grab loop took it.
func (s *screen) show(t *testing.T, v byte) {
	t.Helper()
	select {
	case s.pics <- v:
	case <-time.After(5 * time.Second):
		t.Fatalf("the grab loop did not take picture %d", v)
	}
}

// coder is a fake inter-coded encoder: a keyframe first and when forced,
// deltas otherwise; each frame's data is the picture's first byte.
type coder struct {
	delay    time.Duration
	encoded  *atomic.Int64
	keyNext  bool
	keyCount *atomic.Int64
}

func (c *coder) Encode(p *media.Picture) (*media.Frame, error) {
	time.Sleep(c.delay)
	c.encoded.Add(1)
	key := c.keyNext
	c.keyNext = false
	if key {
		c.keyCount.Add(1)
	}
	return &media.Frame{Codec: media.H264, Data: []byte{p.Pix[0]}, Keyframe: key, Width: p.Width, Height: p.Height, Captured: p.Captured}, nil
}
func (c *coder) ForceKeyframe() { c.keyNext = true }
func (c *coder) Close() error   { return nil }

type counts struct{ encoded, keys atomic.Int64 }

func (n *counts) factory(delay time.Duration, every bool) func() (media.Encoder, error) {
	return func() (media.Encoder, error) {
		c := &coder{delay: delay, encoded: &n.encoded, keyCount: &n.keys, keyNext: true}
		if every {
			return jpegLike{c}, nil
		}
		return c, nil
	}
}

// jpegLike makes every frame a keyframe, as JPEG does.
type jpegLike struct{ *coder }

func (j jpegLike) Encode(p *media.Picture) (*media.Frame, error) {
	f, err := j.coder.Encode(p)
	if f != nil {
		f.Keyframe = true
	}
	return f, err
}

func next(t *testing.T, s *fanout.Subscriber[*media.Frame]) *media.Frame {
	t.Helper()
	select {
	case f := <-s.Frames():
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5 s")
		return nil
	}
}

func none(t *testing.T, s *fanout.Subscriber[*media.Frame], within time.Duration) {
	t.Helper()
	select {
	case f := <-s.Frames():
		t.Fatalf("got frame %v (key %v), want none", f.Data, f.Keyframe)
	case <-time.After(within):
	}
}

func TestTracks(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("newest wins, still screen encodes nothing", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{})
		defer p.Close()
		var n counts
		tr := p.Track(pipeline.TrackOptions{Name: "jpeg", Encoder: n.factory(0, true)})
		a, err := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		scr.show(t, 1)
		if f := next(t, a); f.Data[0] != 1 || !f.Keyframe {
			t.Fatalf("first frame %v key %v", f.Data, f.Keyframe)
		}
		// A still screen: the source emits nothing, so nothing is encoded.
		none(t, a, 100*time.Millisecond)
		if got := n.encoded.Load(); got != 1 {
			t.Fatalf("encoded %d frames on a still screen, want 1", got)
		}
		// A newcomer gets the newest frame at once, without a new encode.
		b, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "b"})
		defer b.Close()
		if f := next(t, b); f.Data[0] != 1 {
			t.Fatalf("newcomer got %v", f.Data)
		}
		if got := n.encoded.Load(); got != 1 {
			t.Fatalf("a newcomer cost an encode: %d", got)
		}
	})
	t.Run("from a keyframe, even on a still screen", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{})
		defer p.Close()
		var n counts
		tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: n.factory(0, false), Delivery: pipeline.FromKeyframe})
		a, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
		defer a.Close()
		for v := byte(1); v <= 3; v++ {
			scr.show(t, v)
			f := next(t, a)
			if f.Data[0] != v || f.Keyframe != (v == 1) {
				t.Fatalf("frame %d: data %v key %v", v, f.Data, f.Keyframe)
			}
		}
		// b joins a still screen: it must get a keyframe of the current
		// picture without the screen changing, and a must get it too (in order).
		b, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "b"})
		defer b.Close()
		fb := next(t, b)
		if !fb.Keyframe || fb.Data[0] != 3 {
			t.Fatalf("joiner's first frame: data %v key %v, want a keyframe of 3", fb.Data, fb.Keyframe)
		}
		if fa := next(t, a); !fa.Keyframe || fa.Data[0] != 3 {
			t.Fatalf("a's frame after the join: data %v key %v", fa.Data, fa.Keyframe)
		}
		scr.show(t, 4)
		for _, s := range []*fanout.Subscriber[*media.Frame]{a, b} {
			if f := next(t, s); f.Data[0] != 4 || f.Keyframe {
				t.Fatalf("after the join: data %v key %v, want delta 4", f.Data, f.Keyframe)
			}
		}
		if k := n.keys.Load(); k != 2 {
			t.Fatalf("%d keyframes, want 2 (start, join)", k)
		}
	})
	t.Run("joiners at once share one keyframe", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{})
		defer p.Close()
		var n counts
		tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: n.factory(20*time.Millisecond, false), Delivery: pipeline.FromKeyframe})
		a, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
		defer a.Close()
		scr.show(t, 1)
		next(t, a)
		var subs []*fanout.Subscriber[*media.Frame]
		for range 10 {
			s, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "j"})
			defer s.Close()
			subs = append(subs, s)
		}
		for _, s := range subs {
			if f := next(t, s); !f.Keyframe {
				t.Fatal("a joiner started on a delta frame")
			}
		}
		time.Sleep(100 * time.Millisecond)
		// One keyframe at the start, at most two for ten joiners (one may be
		// in the encoder already when the rest ask).
		if k := n.keys.Load(); k > 3 {
			t.Fatalf("%d keyframes for 10 joiners at once, want at most 3 in all", k)
		}
	})
	t.Run("a subscriber that falls behind restarts at a keyframe", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{})
		defer p.Close()
		var n counts
		tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: n.factory(0, false), Delivery: pipeline.FromKeyframe, Queue: 4})
		fast, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "fast"})
		defer fast.Close()
		slow, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "slow"})
		defer slow.Close()
		var want byte = 1
		for v := byte(1); v <= 10; v++ {
			scr.show(t, v)
			for { // fast reads everything, in order (a keyframe may be repeated)
				f := next(t, fast)
				if f.Data[0] == v {
					break
				}
				if f.Data[0] != want {
					t.Fatalf("fast got %d, want %d or %d", f.Data[0], want, v)
				}
			}
			want = v
		}
		// slow read nothing: it holds at most its queue, and what it holds
		// starts at a keyframe and has no gap, so it can decode all of it.
		var got []*media.Frame
		for len(slow.Frames()) > 0 {
			got = append(got, <-slow.Frames())
		}
		if len(got) == 0 || len(got) > 4 {
			t.Fatalf("slow holds %d frames, want 1 to 4 (its queue)", len(got))
		}
		if !got[0].Keyframe {
			t.Fatalf("after falling behind, slow resumes on a delta frame %v", got[0].Data)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq != got[i-1].Seq+1 {
				t.Fatalf("slow's frames have a gap: seq %d after %d", got[i].Seq, got[i-1].Seq)
			}
		}
		if st := slow.Stats(); st.Dropped == 0 {
			t.Fatal("slow's dropped frames not counted")
		}
	})
	t.Run("a slow encoder never delays another track", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{})
		var fastN, slowN counts
		fast := p.Track(pipeline.TrackOptions{Name: "jpeg", Encoder: fastN.factory(0, true)})
		slow := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: slowN.factory(40*time.Millisecond, false), Delivery: pipeline.FromKeyframe})
		fs, _ := fast.Subscribe(fanout.SubscriberInfo{ID: "f"})
		ss, _ := slow.Subscribe(fanout.SubscriberInfo{ID: "s"})
		var wg sync.WaitGroup
		var lastFast, lastSlow atomic.Int32
		drain := func(s *fanout.Subscriber[*media.Frame], last *atomic.Int32) {
			defer wg.Done()
			for {
				select {
				case f := <-s.Frames():
					last.Store(int32(f.Data[0]))
				case <-s.Done():
					return
				}
			}
		}
		wg.Add(2)
		go drain(fs, &lastFast)
		go drain(ss, &lastSlow)
		start := time.Now()
		for v := byte(1); v <= 100; v++ {
			scr.show(t, v)
			time.Sleep(2 * time.Millisecond)
		}
		took := time.Since(start)
		deadline := time.Now().Add(2 * time.Second)
		for (lastFast.Load() != 100 || lastSlow.Load() != 100) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if lastFast.Load() != 100 || lastSlow.Load() != 100 {
			t.Fatalf("last frames: fast %d, slow %d; both should reach the newest picture, 100", lastFast.Load(), lastSlow.Load())
		}
		// The grab loop never waited for the 40 ms encoder: 100 pictures
		// 2 ms apart took far less than 100 × 40 ms.
		if took > 2*time.Second {
			t.Fatalf("showing 100 pictures took %v: the slow encoder held the grab loop", took)
		}
		if f, s := fastN.encoded.Load(), slowN.encoded.Load(); f < 3*s || s > 40 {
			t.Fatalf("encoded: fast %d, slow %d; the slow one should skip to the newest picture", f, s)
		}
		p.Close()
		wg.Wait()
		if made, freed := scr.made.Load(), scr.freed.Load(); made != freed {
			t.Fatalf("%d pictures made, %d freed", made, freed)
		}
	})
	t.Run("every picture is freed once the tracks are done", func(t *testing.T) {
		scr := newScreen()
		p := pipeline.New(scr, pipeline.Options{IdleStop: 10 * time.Millisecond})
		var n counts
		tr := p.Track(pipeline.TrackOptions{Name: "jpeg", Encoder: n.factory(0, true)})
		s, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
		for v := byte(1); v <= 20; v++ {
			scr.show(t, v)
		}
		s.Close()
		deadline := time.Now().Add(2 * time.Second)
		for p.Grabbing() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if p.Grabbing() {
			t.Fatal("the grab loop runs on with no track watched")
		}
		if made, freed := scr.made.Load(), scr.freed.Load(); made != freed {
			t.Fatalf("%d pictures made, %d freed after the tracks stopped", made, freed)
		}
		p.Close()
	})
}
