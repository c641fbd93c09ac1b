package pipeline_test

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
)

// Viewers joining a moving screen start from the kept group of pictures:
// ten joiners, one after another, cost no keyframe at all, and each gets the
// group in order and then the live frames.
func TestJoinersReplayTheGroup(t *testing.T) {
	defer goleak.VerifyNone(t)
	scr := newScreen()
	p := pipeline.New(scr, pipeline.Options{})
	defer p.Close()
	var n counts
	tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: n.factory(0, false), Delivery: pipeline.FromKeyframe,
		GOP: 100, GOPBytes: 1 << 20})
	a, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
	defer a.Close()
	v := byte(1)
	scr.show(t, v)
	next(t, a)
	for range 10 {
		v++
		scr.show(t, v)
		next(t, a)
		j, err := tr.Subscribe(fanout.SubscriberInfo{ID: "joiner"})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		for w := byte(1); w <= v; w++ {
			if f := next(t, j); f.Data[0] != w || f.Keyframe != (w == 1) {
				t.Fatalf("joiner after %d: frame %v key %v, want %d", v, f.Data, f.Keyframe, w)
			}
		}
	}
	if k := n.keys.Load(); k != 1 {
		t.Fatalf("%d keyframes for 10 joiners, want the first only", k)
	}
}

// Keyframe requests closer together than KeyframeEvery make one keyframe
// when it is due, not one each.
func TestKeyframeEvery(t *testing.T) {
	defer goleak.VerifyNone(t)
	scr := newScreen()
	p := pipeline.New(scr, pipeline.Options{})
	defer p.Close()
	var n counts
	const every = 300 * time.Millisecond
	tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: n.factory(0, false), Delivery: pipeline.FromKeyframe, KeyframeEvery: every})
	a, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
	defer a.Close()
	scr.show(t, 1)
	start := time.Now()
	if f := next(t, a); !f.Keyframe {
		t.Fatal("the first frame is not a keyframe")
	}
	// Requests for a while, on a moving screen.
	for v := byte(2); time.Since(start) < every/2; v++ {
		tr.RequestKeyframe()
		scr.show(t, v)
		if f := next(t, a); f.Keyframe {
			t.Fatalf("a keyframe %v after the last: want none before %v", time.Since(start), every)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// On a still screen the one owed is made when due, without a new picture.
	var f *media.Frame
	for f = next(t, a); !f.Keyframe; f = next(t, a) {
	}
	if el := time.Since(start); el < every {
		t.Fatalf("the owed keyframe came after %v, want ≥ %v", el, every)
	}
	none(t, a, every)
	if k := n.keys.Load(); k != 2 {
		t.Fatalf("%d keyframes, want 2 (the first, one for all the requests)", k)
	}
}

// rated is a fake encoder that takes a target bitrate.
type rated struct {
	*coder
	got *atomic.Int64
}

func (r rated) SetBitrate(bps int) { r.got.Store(int64(bps)) }

// SetBitrate reaches the running encoder before its next frame, and a new
// encoder (a restart) gets it too.
func TestSetBitrate(t *testing.T) {
	defer goleak.VerifyNone(t)
	scr := newScreen()
	p := pipeline.New(scr, pipeline.Options{})
	defer p.Close()
	var n counts
	var got atomic.Int64
	factory := func() (media.Encoder, error) {
		got.Store(0)
		return rated{&coder{encoded: &n.encoded, keyCount: &n.keys, keyNext: true}, &got}, nil
	}
	tr := p.Track(pipeline.TrackOptions{Name: "h264", Encoder: factory, Delivery: pipeline.FromKeyframe})
	a, _ := tr.Subscribe(fanout.SubscriberInfo{ID: "a"})
	defer a.Close()
	scr.show(t, 1)
	next(t, a)
	if got.Load() != 0 {
		t.Fatalf("the encoder got bitrate %d before any was set", got.Load())
	}
	tr.SetBitrate(700_000)
	scr.show(t, 2)
	if f := next(t, a); f.Keyframe {
		t.Fatal("a new bitrate brought a keyframe")
	}
	if got.Load() != 700_000 {
		t.Fatalf("the encoder got %d, want 700000", got.Load())
	}
	tr.SetEncoder(factory) // a restart: the new encoder gets the target too
	scr.show(t, 3)
	next(t, a)
	if got.Load() != 700_000 {
		t.Fatalf("the new encoder got %d, want 700000", got.Load())
	}
}
