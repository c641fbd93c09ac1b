// Package vp8 is the VP8 encoder for browsers without H.264 (Firefox ESR
// offers only VP8, VP9 and AV1), libvpx in its real-time CBR mode through
// cgo, tuned for screen content, with libyuv turning captured pixels into
// I420. Builds without libvpx get an encoder that says so.
package vp8

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/deskcast/deskcast/media"
)

// Defaults for Options' zero values.
const (
	DefaultBitrate = 3_000_000
	DefaultFPS     = 30
	DefaultSpeed   = 8
	DefaultMinQ    = 4
	DefaultMaxQ    = 38
	// DefaultKeyframeCap is the keyframe's budget in frames' worth of
	// Bitrate/FPS: at the defaults 10 × 12.5 KB, 125 KB.
	DefaultKeyframeCap = 10
)

// The picture sizes VP8 codes: its headers hold 14 bits a side.
const (
	MinSize = 1
	MaxSize = 16383
)

// ErrUnavailable is what New, NewDecoder and Available return in a build
// without libvpx.
var ErrUnavailable = errors.New("VP8 needs libvpx, not in this build")

// Options configure an Encoder; the zero value is usable.
type Options struct {
	// Bitrate is the target in bits per second (DefaultBitrate when 0).
	Bitrate int
	// FPS is the expected frame rate (DefaultFPS when 0; at most 60), from
	// which the rate control budgets each frame; the time between the
	// pictures' capture times is what it actually follows.
	FPS int
	// Speed is libvpx's real-time speed, 4 (finer) to 16 (cheapest), fixed
	// rather than adapted to the time an encode takes (DefaultSpeed when 0).
	Speed int
	// MinQ and MaxQ bound the quantiser on libvpx's 0..63 scale (lower is
	// finer), 0 for DefaultMinQ and DefaultMaxQ. MaxQ is the quality floor
	// and so the cap on a frame's size: libvpx's CBR rate control holds a
	// scroll or a dragged window well under Bitrate, but a whole new screen
	// (a slide, a window switch) costs what MaxQ makes it. At 38 the busy
	// 1080p desktops of the tests stay at 38 dB Y-PSNR or better while
	// moving (2.2 to 2.6 Mbit/s), and a whole new screen is a keyframe of
	// about 57 KB (the worst case, 14 Mbit/s if it happens 30 times a
	// second); 63 lets the rate control meet Bitrate at any cost in quality
	// (about 30 dB).
	MinQ, MaxQ int
	// KeyframeCap caps a keyframe's target size, in frames' worth of
	// Bitrate/FPS (DefaultKeyframeCap when 0, at least 2), through libvpx's
	// VP8E_SET_MAX_INTRA_BITRATE_PCT: a joining viewer's first frame
	// arrives in that many frame times on a link of Bitrate. It is a target
	// under MaxQ: a screen that cannot be coded that small at MaxQ gets a
	// keyframe of what MaxQ makes it (about 65 KB for the tests' 1080p
	// desktops at the defaults, the frames after it refining what the
	// keyframe left coarse).
	KeyframeCap int
	// TemporalLayers is 1 (every frame updates the reference: the default)
	// or 2, when every other inter frame updates no reference frame and no
	// probability: no later frame depends on it, so it is Droppable, and a
	// viewer on a slow link can be sent the others only.
	TemporalLayers int
}

func (o Options) withDefaults() (Options, error) {
	if o.Bitrate == 0 {
		o.Bitrate = DefaultBitrate
	}
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.Speed == 0 {
		o.Speed = DefaultSpeed
	}
	if o.KeyframeCap == 0 {
		o.KeyframeCap = DefaultKeyframeCap
	}
	if o.TemporalLayers == 0 {
		o.TemporalLayers = 1
	}
	switch {
	case o.MinQ == 0 && o.MaxQ == 0:
		o.MinQ, o.MaxQ = DefaultMinQ, DefaultMaxQ
	case o.MinQ == 0:
		o.MinQ = min(DefaultMinQ, o.MaxQ)
	case o.MaxQ == 0:
		o.MaxQ = max(DefaultMaxQ, o.MinQ)
	}
	switch {
	case o.Bitrate < 10_000 || o.Bitrate > 100_000_000:
		return o, fmt.Errorf("vp8 bitrate %d: want 10000 to 100000000 bit/s", o.Bitrate)
	case o.FPS < 1 || o.FPS > 60:
		return o, fmt.Errorf("vp8 fps %d: want 1 to 60", o.FPS)
	case o.Speed < 4 || o.Speed > 16:
		return o, fmt.Errorf("vp8 speed %d: want 4 to 16", o.Speed)
	case o.MinQ < 0 || o.MaxQ > 63 || o.MinQ > o.MaxQ:
		return o, fmt.Errorf("vp8 quantiser range %d..%d: want 0 ≤ MinQ ≤ MaxQ ≤ 63", o.MinQ, o.MaxQ)
	case o.KeyframeCap < 2 || o.KeyframeCap > 1000:
		return o, fmt.Errorf("vp8 keyframe cap %d: want 2 to 1000 frames' worth", o.KeyframeCap)
	case o.TemporalLayers < 1 || o.TemporalLayers > 2:
		return o, fmt.Errorf("vp8 temporal layers %d: want 1 or 2", o.TemporalLayers)
	}
	return o, nil
}

// Encoder compresses pictures to VP8, one frame per picture. The first
// frame, the first after a size change and the first after ForceKeyframe are
// keyframes, and so is a whole new screen (a slide, a window switch), which
// libvpx codes in half the bytes as a keyframe than as an inter frame; every
// other frame is predicted from the ones before (there is no periodic
// keyframe: a viewer that joins or loses a packet asks for one).
// Like every media.Encoder it is used from one goroutine at a time,
// ForceKeyframe excepted.
//
// VP8 codes any size from 1x1 to 16383x16383, odd ones too (its chroma
// planes round up): every picture is coded whole, at its own size.
type Encoder struct {
	s       *session // nil once closed
	force   atomic.Bool
	bitrate atomic.Int64 // a new target from SetBitrate, 0 when none is pending
}

var _ media.Encoder = (*Encoder)(nil)

// New returns an encoder, or ErrUnavailable in a build without libvpx.
func New(opt Options) (*Encoder, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := newSession(opt)
	if err != nil {
		return nil, err
	}
	return &Encoder{s: s}, nil
}

// Encode compresses p, which is not kept. It returns a nil frame and a nil
// error if libvpx produced no frame for the picture (this package asks it
// never to drop one, and the tests have never seen it): the caller must
// expect a nil frame, send nothing for it, and carry on.
func (e *Encoder) Encode(p *media.Picture) (*media.Frame, error) {
	if e.s == nil {
		return nil, errors.New("encoding vp8: encoder closed")
	}
	if p.Width < 1 || p.Height < 1 || p.Stride < p.Width*4 || len(p.Pix) < (p.Height-1)*p.Stride+p.Width*4 {
		return nil, fmt.Errorf("encoding vp8: bad picture %dx%d stride %d len %d", p.Width, p.Height, p.Stride, len(p.Pix))
	}
	if p.Width > MaxSize || p.Height > MaxSize {
		return nil, fmt.Errorf("encoding vp8: a %dx%d picture: VP8 codes at most %dx%d", p.Width, p.Height, MaxSize, MaxSize)
	}
	if bps := e.bitrate.Swap(0); bps != 0 {
		if err := e.s.setBitrate(int(bps)); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	key := e.force.Swap(false)
	f, err := e.s.encode(p, key)
	if err != nil || f.data == nil {
		if key {
			e.force.Store(true) // still owed
		}
		return nil, err
	}
	return &media.Frame{
		Codec:     media.VP8,
		Data:      f.data,
		Keyframe:  f.key,
		Droppable: f.droppable,
		Width:     p.Width,
		Height:    p.Height,
		Captured:  p.Captured,
		Grab:      p.Grab,
		Encode:    time.Since(start),
	}, nil
}

// ForceKeyframe makes the next frame a keyframe. Unlike the other methods it
// may be called from any goroutine, while Encode runs too (a viewer's
// keyframe request arrives on its own goroutine); requests before one Encode
// make one keyframe.
func (e *Encoder) ForceKeyframe() { e.force.Store(true) }

// SetBitrate sets the CBR target (bit/s, clamped to 10 kbit/s to 100
// Mbit/s) from the next frame on, without a keyframe: what the viewers'
// links carry. Like ForceKeyframe it may be called from any goroutine.
func (e *Encoder) SetBitrate(bps int) { e.bitrate.Store(int64(min(max(bps, 10_000), 100_000_000))) }

// Close frees the encoder. Closing twice is fine.
func (e *Encoder) Close() error {
	if e.s != nil {
		e.s.close()
		e.s = nil
	}
	return nil
}

// coded is one encoded picture; data is nil when libvpx gave none.
type coded struct {
	data      []byte
	key       bool
	droppable bool // it updated no reference frame and no probability
}
