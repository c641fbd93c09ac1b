package pipeline_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
)

// fakeAudioEncoder codes a frame of zeros as one byte (DTX) and anything
// else as its first sample divided by 100 and two more bytes.
type fakeAudioEncoder struct {
	samples int
	closed  chan struct{}
	loss    atomic.Int32
}

func (e *fakeAudioEncoder) FrameSamples() int { return e.samples }
func (e *fakeAudioEncoder) Encode(pcm []int16) ([]byte, error) {
	if len(pcm) != e.samples*2 {
		return nil, errors.New("wrong length")
	}
	for _, v := range pcm {
		if v != 0 {
			return []byte{byte(pcm[0] / 100), 0, 0}, nil
		}
	}
	return []byte{0}, nil
}
func (e *fakeAudioEncoder) SetPacketLoss(p int) error { e.loss.Store(int32(p)); return nil }
func (e *fakeAudioEncoder) Close() error              { close(e.closed); return nil }

func chunk(at time.Time, v int16) *media.AudioChunk {
	pcm := make([]int16, 480*2)
	for i := range pcm {
		pcm[i] = v
	}
	return &media.AudioChunk{PCM: pcm, Rate: 48000, Channels: 2, Captured: at}
}

func TestAudioTrack(t *testing.T) {
	defer goleak.VerifyNone(t)
	feed := testenv.NewFeed[*media.AudioChunk]()
	sound := fanout.New[*media.AudioChunk](feed, fanout.Options[*media.AudioChunk]{Queue: 64, IdleStop: time.Millisecond}) // room for every chunk the test sends: the encoder loses none, however slow
	defer sound.Close()
	encoders := make(chan *fakeAudioEncoder, 4)
	// When chunks arrive, as the encoder reads them: each arrive(at) is the
	// arrival of the next chunk read, and later chunks arrive at the same
	// time until the next arrive. A queue, not a shared clock, as the
	// encoder reads chunks after Emit has returned.
	t0 := time.Now()
	arrivals := make(chan time.Time, 64)
	last := t0
	now := func() time.Time {
		select {
		case last = <-arrivals:
		default:
		}
		return last
	}
	arrive := func(at time.Time) { arrivals <- at }
	track := pipeline.NewAudioTrack(sound, pipeline.AudioTrackOptions{Codec: media.Opus, Rate: 48000, Channels: 2, Queue: 8,
		IdleStop: time.Millisecond, Now: now,
		Encoder: func() (pipeline.AudioEncoder, error) {
			e := &fakeAudioEncoder{samples: 960, closed: make(chan struct{})}
			encoders <- e
			return e, nil
		}})
	defer track.Close()
	if feed.Runs() != 0 {
		t.Fatal("the sound runs without a listener")
	}
	sub, err := track.Subscribe(fanout.SubscriberInfo{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitRun(t, feed.Started, 1, "sound capture on the first listener")
	enc := <-encoders

	next := func(what string) *media.Frame {
		t.Helper()
		select {
		case f := <-sub.Frames():
			return f
		case <-time.After(testenv.Patience):
			t.Fatalf("%s: no packet", what)
			return nil
		}
	}
	// Chunks arriving steadily whose capture times jitter, and one that
	// jumps (chunks the capture dropped): the packets are 20 ms apart.
	jitter := []time.Duration{0, 3, -2, 4, 1, -3, 102, 100}
	for i, j := range jitter {
		arrive(t0.Add(time.Duration(i) * 10 * time.Millisecond))
		feed.Emit(t, chunk(t0.Add(time.Duration(i)*10*time.Millisecond+j*time.Millisecond), int16(100*(i+1))))
	}
	var prev *media.Frame
	for i := range len(jitter) / 2 {
		f := next("tone")
		if f.Codec != media.Opus || f.Duration != 20*time.Millisecond || len(f.Data) != 3 || f.Data[0] != byte(2*i+1) {
			t.Fatalf("packet %d: %+v", i, f)
		}
		if prev != nil {
			if d := f.Captured.Sub(prev.Captured); d != 20*time.Millisecond {
				t.Errorf("packet %d: %v after the one before, want 20ms", i, d)
			}
		} else if !f.Captured.Equal(t0) {
			t.Errorf("first packet captured at %v, want the first chunk's %v", f.Captured, t0)
		}
		prev = f
	}
	// A pause in arrival (a pause, a device switch): the clock jumps to the new capture time.
	gapAt := t0.Add(time.Second)
	arrive(gapAt.Add(10 * time.Millisecond))
	feed.Emit(t, chunk(gapAt, 900))
	feed.Emit(t, chunk(gapAt.Add(10*time.Millisecond), 900))
	if f := next("after a gap"); !f.Captured.Equal(gapAt) {
		t.Errorf("after a gap: captured at %v, want %v", f.Captured.Sub(t0), gapAt.Sub(t0))
	}
	// Silence: the first DTX packet goes out, the next ones do not.
	for i := range 6 {
		feed.Emit(t, chunk(gapAt.Add(time.Duration(20+10*i)*time.Millisecond), 0))
	}
	feed.Emit(t, chunk(gapAt.Add(80*time.Millisecond), 500))
	feed.Emit(t, chunk(gapAt.Add(90*time.Millisecond), 500))
	if f := next("silence"); len(f.Data) != 1 {
		t.Errorf("first silent packet: %d bytes, want the 1-byte DTX packet", len(f.Data))
	}
	if f := next("after silence"); len(f.Data) != 3 || !f.Captured.Equal(gapAt.Add(80*time.Millisecond)) {
		t.Errorf("after silence: %d bytes at %v", len(f.Data), f.Captured.Sub(gapAt))
	}
	if got := track.Skipped(); got != 2 {
		t.Errorf("skipped %d DTX packets, want 2", got)
	}
	// Near silence (±3) that the encoder codes in full is silence too: its
	// first 100 ms (five frames) go out coded, so that the receiver's
	// decoder has silence to conceal from, then one TOC-only packet, and
	// the rest is left out; a quiet but audible frame (±50) goes in full.
	// Packet loss reported meanwhile reaches the encoder with the next frame.
	track.SetPacketLoss(12)
	var quiet []int16
	for range 7 {
		quiet = append(quiet, 3, -3)
	}
	for i, v := range append(quiet, 50, 50) {
		feed.Emit(t, chunk(gapAt.Add(time.Duration(100+10*i)*time.Millisecond), v))
	}
	for i := range 5 {
		if f := next("near silence"); len(f.Data) != 3 {
			t.Errorf("near-silent packet %d: %d bytes, want it coded in full", i, len(f.Data))
		}
	}
	if got := enc.loss.Load(); got != 12 {
		t.Errorf("encoder told of %d%% loss, want 12", got)
	}
	if f := next("near silence past the lead"); len(f.Data) != 1 {
		t.Errorf("near-silent packet past the lead: %d bytes, want a 1-byte one", len(f.Data))
	}
	if f := next("quiet sound"); len(f.Data) != 3 {
		t.Errorf("quiet sound: %d bytes, want the full packet", len(f.Data))
	}
	if got := track.Skipped(); got != 3 {
		t.Errorf("skipped %d silent frames, want 3", got)
	}
	// A listener that reads nothing never holds the encoder up: it loses the oldest.
	for i := range 40 {
		feed.Emit(t, chunk(gapAt.Add(time.Duration(300+10*i)*time.Millisecond), 700))
	}
	testenv.Eventually(t, "dropped packets counted", func() bool { return sub.Stats().Dropped >= 6 })
	// The last listener gone, the encoder and the capture stop.
	sub.Close()
	select {
	case <-enc.closed:
	case <-time.After(testenv.Patience):
		t.Fatal("the encoder still runs with no listener")
	}
	testenv.WaitRun(t, feed.Ended, 1, "sound capture after the last listener")
}
