// Package opus is the Opus audio encoder of WebRTC listeners, libopus through
// cgo: 48 kHz stereo, one packet per 10 or 20 ms frame, in-band FEC and DTX
// on (FEC carries something once listeners report loss: SetPacketLoss). Builds without libopus (no cgo, not Linux, -tags noopus) get an
// encoder that says it is unavailable, and the page keeps PCM over its
// WebSocket. A decoder is here too, for tests.
package opus

import (
	"errors"
	"fmt"
	"time"
)

// The format the encoder takes: what capture/audio delivers.
const (
	Rate     = 48000
	Channels = 2
)

// Defaults for Options' zero values.
const (
	DefaultBitrate    = 128_000
	DefaultFrame      = 20 * time.Millisecond
	DefaultComplexity = 10
)

// MaxPacket is the largest packet Encode returns: what libopus recommends as
// the output buffer (RFC 6716's largest frame is 1275 bytes).
const MaxPacket = 4000

// ErrUnavailable is what New, NewDecoder and Available return in a build
// without libopus.
var ErrUnavailable = errors.New("opus needs libopus, not in this build")

// Application is libopus's coding mode.
type Application int

const (
	// Audio is OPUS_APPLICATION_AUDIO: music and any sound, 26.5 ms of
	// algorithmic delay at 20 ms frames (the frame plus 6.5 ms look-ahead).
	Audio Application = iota
	// LowDelay is OPUS_APPLICATION_RESTRICTED_LOWDELAY: CELT only, 2.5 ms
	// of look-ahead instead of 6.5, no speech mode and so no in-band FEC.
	LowDelay
	// Adaptive is LowDelay while listeners lose few packets and Audio, with
	// in-band FEC, once they lose enough for libopus to send it (fecFrom
	// percent for music; back under fecUntil): the lowest delay on
	// a clean network, redundancy on a lossy one. Each switch starts a new
	// libopus encoder, fed the last frames first so that it starts warm; the
	// receiver hears a 4 ms step in the look-ahead as a faint click, once
	// per switch.
	Adaptive
)

// The packet loss, in percent, from which an Adaptive encoder codes with
// in-band FEC, and under which it goes back to LowDelay. libopus sends FEC
// for music over 8% of loss ((128 - voice estimate) / 16, the estimate being
// 0 for OPUS_SIGNAL_MUSIC).
const (
	fecFrom  = 9
	fecUntil = 4
)

// Options configure an Encoder; the zero value is usable.
type Options struct {
	Bitrate     int           // bit/s, DefaultBitrate when 0; 6000 to 510000
	Frame       time.Duration // 10 or 20 ms, DefaultFrame when 0
	Application Application
	// LossPercent is the packet loss expected at the start, 0 to 100;
	// SetPacketLoss changes it. Negative turns in-band FEC off.
	LossPercent int
	// NoDTX turns discontinuous transmission off: silence is then coded in
	// full packets instead of a 1–2 byte one.
	NoDTX bool
	// Complexity trades the encoder's CPU for quality, 1 to 10
	// (DefaultComplexity when 0).
	Complexity int
}

func (o Options) withDefaults() (Options, error) {
	if o.Bitrate == 0 {
		o.Bitrate = DefaultBitrate
	}
	if o.Frame == 0 {
		o.Frame = DefaultFrame
	}
	if o.Complexity == 0 {
		o.Complexity = DefaultComplexity
	}
	switch {
	case o.Bitrate < 6000 || o.Bitrate > 510_000:
		return o, fmt.Errorf("opus bitrate %d: want 6000 to 510000 bit/s", o.Bitrate)
	case o.Frame != 10*time.Millisecond && o.Frame != 20*time.Millisecond:
		return o, fmt.Errorf("opus frame %v: want 10ms or 20ms", o.Frame)
	case o.Application < Audio || o.Application > Adaptive:
		return o, fmt.Errorf("opus application %d: want Audio, LowDelay or Adaptive", o.Application)
	case o.Complexity < 1 || o.Complexity > 10:
		return o, fmt.Errorf("opus complexity %d: want 1 to 10", o.Complexity)
	case o.LossPercent > 100:
		return o, fmt.Errorf("opus loss %d%%: want 0 to 100", o.LossPercent)
	}
	return o, nil
}

// Encoder turns frames of 48 kHz stereo PCM into Opus packets. It is used
// from one goroutine at a time.
type Encoder struct {
	s       *encoder // nil once closed
	samples int      // per channel, per frame
	out     []byte
	opt     Options
	app     Application // the current libopus encoder's: Audio or LowDelay
	loss    int         // as last set
	last    [][]int16   // with Adaptive: the newest frames, to warm up a new encoder
}

// warm is how many frames a new Adaptive encoder is fed before its first
// packet: more than its 6.5 ms of look-ahead and CELT's overlap.
const warm = 2

// New returns an encoder, or ErrUnavailable in a build without libopus.
func New(opt Options) (*Encoder, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	app := opt.Application
	if app == Adaptive {
		app = LowDelay
		if opt.LossPercent >= fecFrom {
			app = Audio
		}
	}
	s, err := newEncoder(opt, app)
	if err != nil {
		return nil, err
	}
	return &Encoder{s: s, samples: int(int64(Rate) * int64(opt.Frame) / int64(time.Second)), out: make([]byte, MaxPacket),
		opt: opt, app: app, loss: max(0, opt.LossPercent)}, nil
}

// FrameSamples is the number of samples per channel each Encode takes.
func (e *Encoder) FrameSamples() int { return e.samples }

// Encode codes one frame: FrameSamples()*Channels interleaved samples. The
// packet is a new slice the caller keeps. Under DTX, a frame of silence
// gives a packet of 1 or 2 bytes, which a sender may leave out (the
// receiver fills the gap with comfort noise).
func (e *Encoder) Encode(pcm []int16) ([]byte, error) {
	if e.s == nil {
		return nil, errors.New("encoding opus: encoder closed")
	}
	if len(pcm) != e.samples*Channels {
		return nil, fmt.Errorf("encoding opus: %d samples, want %d", len(pcm), e.samples*Channels)
	}
	n, err := e.s.encode(pcm, e.samples, e.out)
	if err != nil {
		return nil, err
	}
	if e.opt.Application == Adaptive {
		if len(e.last) < warm {
			e.last = append(e.last, make([]int16, len(pcm)))
		} else {
			e.last = append(e.last[1:], e.last[0])
		}
		copy(e.last[len(e.last)-1], pcm)
	}
	return append([]byte(nil), e.out[:n]...), nil
}

// SetPacketLoss tells the encoder the packet loss its listeners see, 0 to
// 100 (clamped). libopus codes with more redundancy as it rises: past about
// 8% for music it adds in-band FEC (each packet carries the previous frame
// again, at a lower rate), which needs its hybrid SILK and CELT mode; with
// little loss it keeps to CELT, which suits music and costs less CPU. A
// steady 10% from the start would keep music in the hybrid mode for nothing
// on a clean network.
//
// An Adaptive encoder also switches between LowDelay and Audio (see Adaptive).
func (e *Encoder) SetPacketLoss(percent int) error {
	if e.s == nil {
		return errors.New("opus packet loss: encoder closed")
	}
	e.loss = min(100, max(0, percent))
	if e.opt.Application == Adaptive {
		switch {
		case e.app == LowDelay && e.loss >= fecFrom:
			return e.switchTo(Audio)
		case e.app == Audio && e.loss < fecUntil:
			return e.switchTo(LowDelay)
		}
	}
	return e.s.setLoss(e.codedLoss())
}

// codedLoss is the loss libopus is told: an Adaptive encoder in Audio
// mode keeps FEC on until it goes back to LowDelay.
func (e *Encoder) codedLoss() int {
	if e.opt.Application == Adaptive && e.app == Audio {
		return max(e.loss, fecFrom)
	}
	return e.loss
}

// switchTo replaces the libopus encoder with one in app, warmed up on the
// newest frames; on failure the old one goes on.
func (e *Encoder) switchTo(app Application) error {
	old := e.app
	e.app = app
	opt := e.opt
	opt.LossPercent = e.codedLoss()
	s, err := newEncoder(opt, app)
	if err == nil {
		for _, pcm := range e.last {
			if _, err = s.encode(pcm, e.samples, e.out); err != nil {
				s.close()
				break
			}
		}
	}
	if err != nil {
		e.app = old
		return err
	}
	e.s.close()
	e.s = s
	return nil
}

// Close frees the encoder; a second Close does nothing.
func (e *Encoder) Close() error {
	if e.s != nil {
		e.s.close()
		e.s = nil
	}
	return nil
}

// Decoder turns Opus packets back into 48 kHz stereo PCM (for tests).
type Decoder struct {
	d *decoder
}

// NewDecoder returns a decoder, or ErrUnavailable in a build without libopus.
func NewDecoder() (*Decoder, error) {
	d, err := newDecoder()
	if err != nil {
		return nil, err
	}
	return &Decoder{d: d}, nil
}

// Decode decodes one packet into interleaved samples; a nil packet asks for
// samples samples per channel of loss concealment.
func (d *Decoder) Decode(pkt []byte, samples int) ([]int16, error) {
	if d.d == nil {
		return nil, errors.New("decoding opus: decoder closed")
	}
	out := make([]int16, 5760*Channels) // 120 ms, the longest packet
	n, err := d.d.decode(pkt, out, samples)
	if err != nil {
		return nil, err
	}
	return out[:n*Channels], nil
}

// Close frees the decoder; a second Close does nothing.
func (d *Decoder) Close() error {
	if d.d != nil {
		d.d.close()
		d.d = nil
	}
	return nil
}
