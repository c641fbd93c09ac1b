// Package h264 is the H.264 Constrained Baseline encoder, OpenH264 in its
// real-time mode through cgo, with libyuv turning captured
// pixels into I420. Builds without OpenH264 get an encoder that says so.
package h264

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
	DefaultMinQP   = 26
	DefaultMaxQP   = 28
)

// The picture sizes OpenH264 encodes: at least MinSize on each side, at most
// MaxPixels in all (its 36,864 macroblocks, level 5.1's limit: 4096x2304, a
// 4K monitor fits, a 5K one needs scaling).
const (
	MinSize   = 16
	MaxPixels = 36864 * 256
)

// ErrUnavailable is what New, NewDecoder and Available return in a build
// without OpenH264.
var ErrUnavailable = errors.New("H.264 needs OpenH264 (libopenh264), not in this build")

// Options configure an Encoder; the zero value is usable.
type Options struct {
	// Bitrate is the target in bits per second (DefaultBitrate when 0). In
	// real-time mode OpenH264 raises the quantiser (up to MaxQP) only
	// when frames run well over Bitrate/FPS, and as it may not skip frames
	// (a skip would freeze the picture until the next change), a screen that
	// changes entirely every frame goes over it.
	Bitrate int
	// FPS is the expected frame rate (DefaultFPS when 0; at most 60), from
	// which the rate control budgets each frame.
	FPS int
	// MinQP and MaxQP bound the quantiser (1..51; lower is finer), 0 for
	// DefaultMinQP and DefaultMaxQP. OpenH264's real-time rate control
	// codes P frames at MinQP unless they cost far more than their share of
	// Bitrate, and IDRs at what two seconds of Bitrate buy: MaxQP is the
	// quality floor (28 keeps the busy desktops of the tests at 40 dB Y-PSNR
	// or better), at the price of going over Bitrate when the whole screen
	// changes at once.
	MinQP, MaxQP int
	// TemporalLayers is 1 (every P frame a reference: the default) or 2,
	// when every other frame is a non-reference one (nal_ref_idc 0) that no
	// later frame depends on: a viewer on a slow link can be sent only the
	// others, at half the frame rate, from the same encode.
	TemporalLayers int
}

func (o Options) withDefaults() (Options, error) {
	if o.Bitrate == 0 {
		o.Bitrate = DefaultBitrate
	}
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.TemporalLayers == 0 {
		o.TemporalLayers = 1
	}
	switch {
	case o.MinQP == 0 && o.MaxQP == 0:
		o.MinQP, o.MaxQP = DefaultMinQP, DefaultMaxQP
	case o.MinQP == 0:
		o.MinQP = min(DefaultMinQP, o.MaxQP)
	case o.MaxQP == 0:
		o.MaxQP = max(DefaultMaxQP, o.MinQP)
	}
	switch {
	case o.Bitrate < 10_000 || o.Bitrate > 100_000_000:
		return o, fmt.Errorf("h264 bitrate %d: want 10000 to 100000000 bit/s", o.Bitrate)
	case o.FPS < 1 || o.FPS > 60:
		return o, fmt.Errorf("h264 fps %d: want 1 to 60", o.FPS)
	case o.MinQP < 1 || o.MaxQP > 51 || o.MinQP > o.MaxQP:
		return o, fmt.Errorf("h264 QP range %d..%d: want 1 ≤ MinQP ≤ MaxQP ≤ 51", o.MinQP, o.MaxQP)
	case o.TemporalLayers < 1 || o.TemporalLayers > 2:
		return o, fmt.Errorf("h264 temporal layers %d: want 1 or 2", o.TemporalLayers)
	}
	return o, nil
}

// Encoder compresses pictures to H.264 Constrained Baseline, one Annex-B
// access unit per frame. The first frame, the first after a size change and
// the first after ForceKeyframe are IDRs preceded by SPS and PPS; every other
// frame is a P frame predicted from the one before (there is no periodic
// keyframe: a viewer that joins or loses a packet asks for one). Like every
// media.Encoder it is used from one goroutine at a time, ForceKeyframe
// excepted.
//
// H.264's 4:2:0 needs even sizes: a picture with an odd width or height is
// encoded without its last column or row, and the frame says the size it has.
type Encoder struct {
	s       *session // nil once closed
	force   atomic.Bool
	bitrate atomic.Int64 // a new target from SetBitrate, 0 when none is pending
}

var _ media.Encoder = (*Encoder)(nil)

// New returns an encoder, or ErrUnavailable in a build without OpenH264.
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
// error when OpenH264 chose to skip the picture (its rate control may, though
// this package asks it not to): the caller must expect a nil frame, send
// nothing for it, and carry on.
func (e *Encoder) Encode(p *media.Picture) (*media.Frame, error) {
	if e.s == nil {
		return nil, errors.New("encoding h264: encoder closed")
	}
	if p.Width < 1 || p.Height < 1 || p.Stride < p.Width*4 || len(p.Pix) < (p.Height-1)*p.Stride+p.Width*4 {
		return nil, fmt.Errorf("encoding h264: bad picture %dx%d stride %d len %d", p.Width, p.Height, p.Stride, len(p.Pix))
	}
	if w, h := evenSize(p.Width, p.Height); w < MinSize || h < MinSize || w*h > MaxPixels {
		return nil, fmt.Errorf("encoding h264: a %dx%d picture: OpenH264 takes %dx%d up to %d pixels (%dx%d)",
			p.Width, p.Height, MinSize, MinSize, MaxPixels, 4096, 2304)
	}
	if bps := e.bitrate.Swap(0); bps != 0 {
		if err := e.s.setBitrate(int(bps)); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	idr := e.force.Swap(false)
	au, err := e.s.encode(p, idr)
	if err != nil || au.data == nil {
		if idr {
			e.force.Store(true) // still owed
		}
		return nil, err
	}
	return &media.Frame{
		Codec:     media.H264,
		Data:      au.data,
		Keyframe:  au.idr,
		Droppable: au.droppable,
		Width:     au.width,
		Height:    au.height,
		Captured:  p.Captured,
		Grab:      p.Grab,
		Encode:    time.Since(start),
	}, nil
}

// ForceKeyframe makes the next frame an IDR with SPS and PPS before it.
// Unlike the other methods it may be called from any goroutine, while Encode
// runs too (a viewer's keyframe request arrives on its own goroutine);
// requests before one Encode make one IDR.
func (e *Encoder) ForceKeyframe() { e.force.Store(true) }

// SetBitrate sets the rate control's target (bit/s, clamped to 10 kbit/s to
// 100 Mbit/s) from the next frame on, without a keyframe: what the viewers'
// links carry. It moves the quantiser within MinQP
// and MaxQP only. Like ForceKeyframe it may be called from any goroutine.
func (e *Encoder) SetBitrate(bps int) { e.bitrate.Store(int64(min(max(bps, 10_000), 100_000_000))) }

// Close frees the encoder. Closing twice is fine.
func (e *Encoder) Close() error {
	if e.s != nil {
		e.s.close()
		e.s = nil
	}
	return nil
}

// accessUnit is one encoded picture; data is nil for a skipped one.
type accessUnit struct {
	data          []byte
	idr           bool
	droppable     bool // every slice has nal_ref_idc 0
	width, height int
}

// nonReference reports whether the Annex-B access unit au has slices and
// every one of them has nal_ref_idc 0: no later frame refers to it.
func nonReference(au []byte) bool {
	slices := 0
	for i := 0; i+3 < len(au); i++ {
		if au[i] != 0 || au[i+1] != 0 || au[i+2] != 1 {
			continue
		}
		h := au[i+3]
		i += 3
		if t := h & 0x1f; t == 1 || t == 5 {
			if h&0x60 != 0 {
				return false
			}
			slices++
		}
	}
	return slices > 0
}

// evenSize is the part of a w×h picture that 4:2:0 can code.
func evenSize(w, h int) (int, int) { return w &^ 1, h &^ 1 }
