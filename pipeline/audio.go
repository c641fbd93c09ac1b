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
	// SetPacketLoss tells it the loss its listeners see, in percent.
	SetPacketLoss(percent int) error
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
// A silent spell is coded as it comes for its first silenceLead, then
// published once as a DTX packet (2 bytes or fewer), and left out after
// that, as WebRTC senders do; the receiver fills the gap with comfort noise.
// The lead empties the decoder's memory first: a receiver conceals the
// frames after a DTX packet from what it decoded last, and in Opus's CELT
// mode that goes on with the sound before the silence (the end of a tone
// rang on for a quarter of a second). Silence is a frame whose samples are
// all within ±silenceMax (digital silence: what a monitor of a sink that
// plays nothing gives), or one the encoder codes as DTX. The Opus
// encoder's own DTX is best left off: libopus took a steady 440 Hz tone for
// inactivity after half a second and sent only comfort noise, which would
// do the same to a held note. Frames left out are not encoded.
//
// SetPacketLoss passes the loss listeners report on to the encoder, which
// adds redundancy (Opus's in-band FEC) as it rises.
type AudioTrack struct {
	// Hub is the encoded packets' fan-out.
	Hub *fanout.Hub[*media.Frame]

	src     *fanout.Hub[*media.AudioChunk]
	opt     AudioTrackOptions
	skipped atomic.Uint64 // DTX packets left out
	loss    atomic.Int32  // the packet loss listeners report, in percent
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

// SetPacketLoss tells the encoder the packet loss its listeners see, in
// percent (the worst of them: the redundancy costs each little); it takes
// effect from the next frame.
func (t *AudioTrack) SetPacketLoss(percent int) { t.loss.Store(int32(percent)) }

// Skipped counts the silent (DTX) packets left out.
func (t *AudioTrack) Skipped() uint64 { return t.skipped.Load() }

// Close ends every subscription and waits for the encoder to stop.
func (t *AudioTrack) Close() { t.Hub.Close() }

// run is the hub's source: it encodes sound until ctx ends and emits packets.
// The encoding runs in the capture's own goroutine, as a direct subscriber
// of the sound hub: a hand-over to a goroutine of its own, a hundred times a
// second, cost more CPU than the encoding (a frame takes about 0.1 ms, and
// the sound hub's other listeners get each chunk that much later).
func (t *AudioTrack) run(ctx context.Context, emit func(*media.Frame)) error {
	enc, err := t.opt.Encoder()
	if err != nil {
		return fmt.Errorf("starting the %s encoder: %w", t.opt.Codec, err)
	}
	defer enc.Close()
	c := cutter{log: t.opt.Logger, now: t.opt.Now, enc: enc, rate: t.opt.Rate, channels: t.opt.Channels, codec: t.opt.Codec, skipped: &t.skipped,
		loss: &t.loss, buf: make([]int16, 0, enc.FrameSamples()*t.opt.Channels)}
	failed := make(chan error, 1)
	var broken bool // under the sound hub's lock, as every call of the func
	sub, err := t.src.SubscribeFunc(fanout.SubscriberInfo{ID: string(t.opt.Codec) + " encoder"}, func(ch *media.AudioChunk) {
		if broken {
			return
		}
		if err := c.add(ch, emit); err != nil {
			broken = true
			failed <- err
		}
	})
	if err != nil {
		return fmt.Errorf("listening to the sound: %w", err)
	}
	defer sub.Close() // before the encoder closes: no call is running after it
	select {
	case <-ctx.Done():
		return nil
	case <-sub.Done():
		return errors.New("the sound hub closed")
	case err := <-failed:
		return err
	}
}

// cutter cuts chunks into frames, encodes them and stamps their times.
type cutter struct {
	enc            AudioEncoder
	codec          media.Codec
	rate, channels int
	skipped        *atomic.Uint64
	loss           *atomic.Int32 // the loss to code for
	lossSet        int32         // the loss the encoder was last told

	now      func() time.Time
	buf      []int16
	start    time.Time     // the capture time of buf's first sample
	clock    time.Time     // the capture time of the next frame, counted; zero before the first
	arrived  time.Time     // when the last chunk arrived
	gap      bool          // the chunks paused since the last frame
	dtx      bool          // the last packet was a DTX one
	quiet    time.Duration // how long the sound has been silent, up to the current frame
	toc      byte          // the newest packet's TOC byte, for a DTX packet of the same kind
	badShape bool          // a chunk of another format was logged
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

// silenceLead is how much of a silent spell is coded before the DTX packet:
// more than the 43 ms of sound an Opus decoder conceals from.
const silenceLead = 100 * time.Millisecond

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
	if silent(c.buf) {
		c.quiet += dur
	} else {
		c.quiet = 0
	}
	if c.quiet > silenceLead {
		if c.dtx {
			c.skipped.Add(1)
			return nil
		}
		// An Opus packet of its TOC byte alone, one frame (code 0), is an
		// empty frame: the receiver conceals it as DTX.
		c.dtx = true
		emit(&media.Frame{Codec: c.codec, Data: []byte{c.toc &^ 3}, Keyframe: true, Captured: captured, Duration: dur})
		return nil
	}
	if l := c.loss.Load(); l != c.lossSet {
		c.lossSet = l
		if err := c.enc.SetPacketLoss(int(l)); err != nil {
			c.log.Warn("the sound encoder kept its packet loss", "percent", l, "err", err)
		}
	}
	t0 := time.Now()
	pkt, err := c.enc.Encode(c.buf)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", c.codec, err)
	}
	dtx := len(pkt) <= 2
	if dtx && c.dtx {
		c.skipped.Add(1)
		return nil
	}
	c.dtx = dtx
	if len(pkt) > 0 {
		c.toc = pkt[0]
	}
	emit(&media.Frame{Codec: c.codec, Data: pkt, Keyframe: true, Captured: captured, Duration: dur, Encode: time.Since(t0)})
	return nil
}
