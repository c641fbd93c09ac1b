package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// AudioEncoder codes frames of interleaved PCM of a fixed length into
// packets; *opus.Encoder is one. It is used from one goroutine at a time.
type AudioEncoder interface {
	// FrameSamples is how many samples per channel each Encode takes.
	FrameSamples() int
	// Encode codes one frame; the packet is the caller's.
	Encode(pcm []int16) ([]byte, error)
	Close() error
}

// AudioTrackOptions configure an AudioTrack.
type AudioTrackOptions struct {
	Codec    media.Codec
	Rate     int // samples a second per channel the encoder takes
	Channels int
	// Encoder makes the encoder when the track starts (its first listener).
	Encoder func() (AudioEncoder, error)
	// Queue is each listener's queue of packets: one that falls further
	// behind loses the oldest, counted as dropped.
	Queue    int
	IdleStop time.Duration // how long the encoder runs on after the last listener leaves (3 s)
	OnChange func()        // as fanout.Options.OnChange
	Logger   *slog.Logger
	Now      func() time.Time // the clock chunks arrive by (time.Now when nil; tests)
}

// AudioTrack encodes the sound once for every listener: while anybody
// subscribes it reads the sound hub (whose source the engine may swap, pause
// or lose: the track just keeps reading), cuts its chunks into the
// encoder's frames and publishes one *media.Frame per packet, with
// Captured the capture time of its first sample and Duration its length.
//
// Captured counts samples: each frame's is the previous one's plus its
// duration, so the timestamps a sender derives from it advance by exactly
// one frame from packet to packet, at the rate the sound arrives (what a
// receiver's jitter buffer expects). It goes back to the chunks' own
// capture time at the start and after a pause in their arrival of more
// than gapReset (a pause, a device switch or loss): then the timestamps
// jump as far as the sound was away. Capture times that jump while the
// chunks keep arriving (chunks the capture dropped) are not followed, as
// the receiver would take the packets after such a jump for early ones and
// hold them back.
//
// Silence is published once at the start of a silent spell, as a DTX
// packet (2 bytes or fewer), and left out after that, as WebRTC senders do;
// the receiver fills the gap with comfort noise. Silence is a frame whose
// samples are all within ±silenceMax (digital silence: what a monitor of a
// sink that plays nothing gives), or one the encoder codes as DTX. The
// Opus encoder's own DTX is best left off: libopus took a steady 440 Hz tone
// for inactivity after half a second and sent only comfort noise, which
// would do the same to a held note. Frames left out are not encoded.
type AudioTrack struct {
	// Hub is the encoded packets' fan-out.
	Hub *fanout.Hub[*media.Frame]

	src     *fanout.Hub[*media.AudioChunk]
	opt     AudioTrackOptions
	skipped atomic.Uint64 // DTX packets left out
}

// gapReset is the longest pause in the chunks' arrival that the clock
// counts through; after a longer one it goes back to their capture time.
const gapReset = 40 * time.Millisecond

// NewAudioTrack returns a track over the sound hub src; nothing runs until
// its first listener subscribes.
func NewAudioTrack(src *fanout.Hub[*media.AudioChunk], opt AudioTrackOptions) *AudioTrack {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	t := &AudioTrack{src: src, opt: opt}
	t.Hub = fanout.New[*media.Frame](fanout.SourceFunc[*media.Frame](t.run), fanout.Options[*media.Frame]{
		Queue: opt.Queue, IdleStop: opt.IdleStop, Logger: opt.Logger, OnChange: opt.OnChange})
	return t
}

// Subscribe adds a listener (and starts the encoder for the first).
func (t *AudioTrack) Subscribe(info fanout.SubscriberInfo) (*fanout.Subscriber[*media.Frame], error) {
	return t.Hub.Subscribe(info)
}

// Skipped counts the silent (DTX) packets left out.
func (t *AudioTrack) Skipped() uint64 { return t.skipped.Load() }

// Close ends every subscription and waits for the encoder to stop.
func (t *AudioTrack) Close() { t.Hub.Close() }

// run is the hub's source: it reads sound until ctx ends and emits packets.
func (t *AudioTrack) run(ctx context.Context, emit func(*media.Frame)) error {
	enc, err := t.opt.Encoder()
	if err != nil {
		return fmt.Errorf("starting the %s encoder: %w", t.opt.Codec, err)
	}
	defer enc.Close()
	sub, err := t.src.Subscribe(fanout.SubscriberInfo{ID: string(t.opt.Codec) + " encoder"})
	if err != nil {
		return fmt.Errorf("listening to the sound: %w", err)
	}
	defer sub.Close()
	c := cutter{log: t.opt.Logger, now: t.opt.Now, enc: enc, rate: t.opt.Rate, channels: t.opt.Channels, codec: t.opt.Codec, skipped: &t.skipped,
		buf: make([]int16, 0, enc.FrameSamples()*t.opt.Channels)}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Done():
			return errors.New("the sound hub closed")
		case ch := <-sub.Frames():
			if err := c.add(ch, emit); err != nil {
				return err
			}
		}
	}
}

// cutter cuts chunks into frames, encodes them and stamps their times.
type cutter struct {
	enc            AudioEncoder
	codec          media.Codec
	rate, channels int
	skipped        *atomic.Uint64

	now      func() time.Time
	buf      []int16
	start    time.Time // the capture time of buf's first sample
	clock    time.Time // the capture time of the next frame, counted; zero before the first
	arrived  time.Time // when the last chunk arrived
	gap      bool      // the chunks paused since the last frame
	dtx      bool      // the last packet was a DTX one
	badShape bool      // a chunk of another format was logged
	log      *slog.Logger
}

func (c *cutter) add(ch *media.AudioChunk, emit func(*media.Frame)) error {
	if ch.Rate != c.rate || ch.Channels != c.channels {
		if !c.badShape {
			c.badShape = true
			c.log.Warn("sound chunk left out: not the encoder's format", "rate", ch.Rate, "channels", ch.Channels)
		}
		return nil
	}
	now := c.now()
	if !c.arrived.IsZero() && now.Sub(c.arrived) > gapReset {
		c.gap = true
	}
	c.arrived = now
	frame := cap(c.buf)
	per := time.Second / time.Duration(c.rate)
	pcm := ch.PCM
	for off := 0; len(pcm) > 0; {
		if len(c.buf) == 0 {
			c.start = ch.Captured.Add(time.Duration(off/c.channels) * per)
		}
		n := min(frame-len(c.buf), len(pcm))
		c.buf = append(c.buf, pcm[:n]...)
		pcm, off = pcm[n:], off+n
		if len(c.buf) < frame {
			break
		}
		if err := c.encode(emit); err != nil {
			return err
		}
		c.buf = c.buf[:0]
	}
	return nil
}

// silenceMax is the largest sample value a silent frame has (-72 dBFS).
const silenceMax = 8

func silent(pcm []int16) bool {
	for _, v := range pcm {
		if v > silenceMax || v < -silenceMax {
			return false
		}
	}
	return true
}

func (c *cutter) encode(emit func(*media.Frame)) error {
	dur := time.Duration(len(c.buf)/c.channels) * time.Second / time.Duration(c.rate)
	if c.clock.IsZero() || c.gap {
		c.clock, c.gap = c.start, false
	}
	captured := c.clock
	c.clock = c.clock.Add(dur)
	quiet := silent(c.buf)
	if quiet && c.dtx {
		c.skipped.Add(1)
		return nil
	}
	t0 := time.Now()
	pkt, err := c.enc.Encode(c.buf)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", c.codec, err)
	}
	dtx := len(pkt) <= 2
	if quiet && !dtx && len(pkt) > 0 {
		// An Opus packet of its TOC byte alone, one frame (code 0), is an
		// empty frame: the receiver conceals it as DTX.
		pkt = []byte{pkt[0] &^ 3}
		dtx = true
	}
	if dtx && c.dtx {
		c.skipped.Add(1)
		return nil
	}
	c.dtx = dtx
	emit(&media.Frame{Codec: c.codec, Data: pkt, Keyframe: true, Captured: captured, Duration: dur, Encode: time.Since(t0)})
	return nil
}
