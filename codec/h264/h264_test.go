package h264_test

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/media"
)

const minPSNR = 38 // dB, the target

// checked encodes p, decodes the frame with OpenH264's decoder, and checks the
// frame's fields and the picture's size and Y-PSNR; it returns the frame.
func checked(t *testing.T, enc *h264.Encoder, dec *h264.Decoder, p *media.Picture) *media.Frame {
	t.Helper()
	f, err := enc.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Fatal("the encoder skipped a frame")
	}
	w, h := p.Width&^1, p.Height&^1
	if f.Codec != media.H264 || f.Width != w || f.Height != h || !f.Captured.Equal(p.Captured) ||
		f.Grab != p.Grab || f.Encode <= 0 || len(f.Data) == 0 || f.Wire != nil {
		t.Fatalf("frame %+v", *f)
	}
	img, err := dec.Decode(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	if img == nil {
		t.Fatal("the decoder got no picture from a frame")
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("decoded %v, want %dx%d", b, w, h)
	}
	if psnr := lumaPSNR(p, img); psnr < minPSNR {
		t.Fatalf("Y-PSNR %.1f dB, want ≥ %d (%d bytes)", psnr, minPSNR, len(f.Data))
	}
	return f
}

// wantIDR checks that f is an IDR whose access unit is SPS, PPS, IDR slice
// (and nothing but those), for Constrained Baseline.
func wantIDR(t *testing.T, f *media.Frame) {
	t.Helper()
	types := nalTypes(t, f.Data)
	if !f.Keyframe || !slices.Equal(types, []int{7, 8, 5}) {
		t.Fatalf("keyframe %v with NAL units %v, want an IDR with [7 8 5] (SPS, PPS, IDR)", f.Keyframe, types)
	}
	s := parseSPS(t, splitNALs(f.Data)[0])
	// profile_idc 66 with constraint_set1_flag: Constrained Baseline.
	if s.profile != 66 || s.constraints&0x40 == 0 {
		t.Fatalf("SPS profile_idc %d constraints %#02x, want 66 with constraint_set1 (Constrained Baseline)", s.profile, s.constraints)
	}
	if s.width != f.Width || s.height != f.Height {
		t.Fatalf("SPS size %dx%d, frame %dx%d", s.width, s.height, f.Width, f.Height)
	}
	// Studio-swing BT.601 (libyuv's matrix) over sRGB (BT.709 primaries,
	// sRGB transfer), said outright.
	if !s.signalType || s.fullRange || !s.colorDsc || s.primaries != 1 || s.transfer != 13 || s.matrix != 6 {
		t.Fatalf("SPS colour: %+v, want limited range, primaries 1, transfer 13, matrix 6", s)
	}
}

// wantP checks that f is a non-IDR frame of one coded slice.
func wantP(t *testing.T, f *media.Frame) {
	t.Helper()
	if types := nalTypes(t, f.Data); f.Keyframe || !slices.Equal(types, []int{1}) {
		t.Fatalf("keyframe %v with NAL units %v, want a P frame: [1]", f.Keyframe, types)
	}
}

func newPair(t *testing.T, opt h264.Options) (*h264.Encoder, *h264.Decoder) {
	t.Helper()
	needOpenH264(t)
	enc, err := h264.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	dec, err := h264.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Close() })
	return enc, dec
}

func TestSequence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format media.PixFmt
	}{{"BGRX", media.BGRX}, {"RGBA", media.RGBA}} {
		t.Run(tc.name, func(t *testing.T) {
			enc, dec := newPair(t, h264.Options{})
			s := newScroll(1280, 720, 4, 12, tc.format, 7)
			for i := range 12 {
				if i == 8 {
					enc.ForceKeyframe()
				}
				p := s.Picture(i)
				f := checked(t, enc, dec, p)
				p.Release()
				if i == 0 || i == 8 {
					wantIDR(t, f)
				} else {
					wantP(t, f)
				}
			}
		})
	}
}

// The grab loop never sends an unchanged picture, but the encoder must stay
// right if it gets one: OpenH264 refines the picture for a frame or two, then
// sends almost nothing; every frame decodes.
func TestUnchanged(t *testing.T) {
	enc, dec := newPair(t, h264.Options{})
	p := desktop(640, 360, media.BGRX, 3)
	idr := checked(t, enc, dec, p)
	wantIDR(t, idr)
	last := 0.0
	for i := range 8 {
		p.Captured = p.Captured.Add(33 * time.Millisecond)
		f, err := enc.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			continue // a skip is fine too
		}
		wantP(t, f)
		if len(f.Data) > len(idr.Data)/10 || i >= 3 && len(f.Data) > 100 {
			t.Errorf("unchanged frame %d is %d bytes (the IDR %d)", i, len(f.Data), len(idr.Data))
		}
		img, err := dec.Decode(f.Data)
		if err != nil || img == nil {
			t.Fatalf("decoding an unchanged frame: %v, %v", img, err)
		}
		psnr := lumaPSNR(p, img)
		if psnr < minPSNR || psnr < last-0.5 {
			t.Fatalf("unchanged frame %d: Y-PSNR %.1f dB after %.1f", i, psnr, last)
		}
		last = psnr
	}
}

// A share that moves to another monitor changes size: the next frame is an
// IDR at the new size, and the decoder follows.
func TestSizeChange(t *testing.T) {
	enc, dec := newPair(t, h264.Options{})
	sizes := []image.Point{{640, 360}, {640, 360}, {1024, 768}, {1024, 768}, {640, 360}, {800, 600}, {801, 600}}
	for i, sz := range sizes {
		p := desktop(sz.X, sz.Y, media.BGRX, uint64(i))
		f := checked(t, enc, dec, p)
		// 801 wide codes as 800: no new size, no IDR.
		if i == 0 || image.Pt(sz.X&^1, sz.Y&^1) != image.Pt(sizes[i-1].X&^1, sizes[i-1].Y&^1) {
			wantIDR(t, f)
		} else {
			wantP(t, f)
		}
	}
}

// OpenH264 picks the level from the size and frame rate; browsers decode
// above the level their SDP offers, but it must cover the stream.
func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		w, h, fps, level int
	}{{1280, 720, 30, 31}, {1920, 1080, 30, 40}, {1920, 1080, 60, 42}, {3840, 2160, 30, 51}} {
		t.Run(fmt.Sprintf("%dx%d@%d", tc.w, tc.h, tc.fps), func(t *testing.T) {
			enc, dec := newPair(t, h264.Options{FPS: tc.fps})
			p := media.NewPicture(make([]byte, tc.w*tc.h*4), tc.w, tc.h, tc.w*4, media.BGRX, nil)
			f := checked(t, enc, dec, p)
			wantIDR(t, f)
			if s := parseSPS(t, splitNALs(f.Data)[0]); s.level != tc.level {
				t.Fatalf("level_idc %d, want %d", s.level, tc.level)
			}
		})
	}
}

// H.264 4:2:0 needs even sizes: the last odd column or row is left out.
func TestOddSize(t *testing.T) {
	for _, sz := range [][2]int{{641, 361}, {1279, 720}, {1280, 719}, {33, 17}, {17, 17}, {16, 16}} {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			enc, dec := newPair(t, h264.Options{})
			for i := range 3 {
				p := desktop(sz[0], sz[1], media.RGBA, uint64(i))
				f := checked(t, enc, dec, p)
				if i == 0 {
					wantIDR(t, f)
				}
			}
		})
	}
}

// Keyframe requests arrive from viewers' goroutines while the encoder runs.
func TestForceKeyframeConcurrently(t *testing.T) {
	enc, dec := newPair(t, h264.Options{})
	s := newScroll(640, 360, 2, 22, media.BGRX, 5)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			enc.ForceKeyframe()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := range 20 {
		checked(t, enc, dec, s.Picture(i))
	}
	<-done
	enc.ForceKeyframe()
	enc.ForceKeyframe()
	wantIDR(t, checked(t, enc, dec, s.Picture(20)))
	wantP(t, checked(t, enc, dec, s.Picture(21)))
}

func TestBadInput(t *testing.T) {
	enc, dec := newPair(t, h264.Options{})
	for _, p := range []*media.Picture{
		media.NewPicture(make([]byte, 100), 160, 120, 640, media.BGRX, nil),
		media.NewPicture(make([]byte, 640*120), 160, 120, 320, media.BGRX, nil),
		media.NewPicture(make([]byte, 4), 1, 1, 4, media.BGRX, nil),
		media.NewPicture(make([]byte, 15*64*4), 15, 64, 15*4, media.BGRX, nil),           // narrower than 16
		media.NewPicture(make([]byte, 64*17*4), 64, 17, 64*4, media.RGBA, nil),           // 16 rows coded: fine, below
		media.NewPicture(make([]byte, 5120*2880*4), 5120, 2880, 5120*4, media.BGRX, nil), // 5K
	} {
		f, err := enc.Encode(p)
		if p.Width == 64 && p.Height == 17 {
			if err != nil || f == nil {
				t.Errorf("64x17: %v", err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%dx%d stride %d len %d: encoded without an error", p.Width, p.Height, p.Stride, len(p.Pix))
		}
	}
	// The encoder still works after refusing those.
	wantIDR(t, checked(t, enc, dec, desktop(160, 120, media.BGRX, 1)))
}

func TestClose(t *testing.T) {
	enc, _ := newPair(t, h264.Options{})
	if _, err := enc.Encode(desktop(64, 64, media.BGRX, 1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	enc.ForceKeyframe()
	if _, err := enc.Encode(desktop(64, 64, media.BGRX, 1)); err == nil {
		t.Fatal("a closed encoder encoded")
	}
}

func TestOptions(t *testing.T) {
	needOpenH264(t)
	for _, tc := range []struct {
		opt h264.Options
		ok  bool
	}{
		{h264.Options{}, true},
		{h264.Options{Bitrate: 500_000, FPS: 15}, true},
		{h264.Options{Bitrate: 3_000_000, FPS: 60, MinQP: 20, MaxQP: 30}, true},
		{h264.Options{MaxQP: 20}, true},
		{h264.Options{MinQP: 30}, true},
		{h264.Options{MinQP: 30, MaxQP: 28}, false},
		{h264.Options{MaxQP: 52}, false},
		{h264.Options{MinQP: -1}, false},
		{h264.Options{Bitrate: -1}, false},
		{h264.Options{Bitrate: 1_000}, false},
		{h264.Options{FPS: -1}, false},
		{h264.Options{FPS: 61}, false},
		{h264.Options{TemporalLayers: 2}, true},
		{h264.Options{TemporalLayers: 3}, false},
		{h264.Options{TemporalLayers: -1}, false},
	} {
		enc, err := h264.New(tc.opt)
		if enc != nil {
			enc.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("New(%+v) = %v, want ok %v", tc.opt, err, tc.ok)
		}
	}
}

// Without OpenH264 every entry point says so, and EncoderName says none.
func TestUnavailable(t *testing.T) {
	if h264.Available() == nil {
		if h264.EncoderName != "OpenH264" {
			t.Fatalf("EncoderName %q", h264.EncoderName)
		}
		t.Skip("OpenH264 is in this build")
	}
	if _, err := h264.New(h264.Options{}); !errors.Is(err, h264.ErrUnavailable) {
		t.Fatalf("New: %v", err)
	}
	if _, err := h264.NewDecoder(); !errors.Is(err, h264.ErrUnavailable) {
		t.Fatalf("NewDecoder: %v", err)
	}
	if h264.EncoderName != "none" {
		t.Fatalf("EncoderName %q", h264.EncoderName)
	}
}

// With two temporal layers every other P frame is a non-reference frame,
// marked Droppable: a decoder given only the others decodes each of them
// right, so a slow viewer can be sent half the frames from the same encode.
func TestTemporalLayers(t *testing.T) {
	enc, all := newPair(t, h264.Options{TemporalLayers: 2})
	refOnly, err := h264.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { refOnly.Close() })
	s := newScroll(640, 360, 4, 16, media.BGRX, 5)
	dropped := 0
	for i := range 16 {
		if i == 9 {
			enc.ForceKeyframe()
		}
		p := s.Picture(i)
		f := checked(t, enc, all, p)
		if f.Keyframe && f.Droppable {
			t.Fatalf("frame %d: a keyframe marked droppable", i)
		}
		if f.Droppable {
			dropped++
			p.Release()
			continue
		}
		img, err := refOnly.Decode(f.Data)
		if err != nil || img == nil {
			t.Fatalf("frame %d without the droppable ones: %v (picture %v)", i, err, img != nil)
		}
		if psnr := lumaPSNR(p, img); psnr < minPSNR {
			t.Fatalf("frame %d without the droppable ones: Y-PSNR %.1f dB", i, psnr)
		}
		p.Release()
	}
	if dropped < 6 || dropped > 8 {
		t.Fatalf("%d of 16 frames droppable, want every other P frame", dropped)
	}

	// One layer: no frame is droppable.
	enc1, dec1 := newPair(t, h264.Options{})
	for i := range 4 {
		p := s.Picture(i)
		if f := checked(t, enc1, dec1, p); f.Droppable {
			t.Fatalf("frame %d droppable with one temporal layer", i)
		}
		p.Release()
	}
}

// SetBitrate lowers the target from the next frame on, without a keyframe,
// and every frame still decodes at the quality floor.
func TestSetBitrate(t *testing.T) {
	enc, dec := newPair(t, h264.Options{})
	m := newMoving(640, 360, media.BGRX, 9)
	size := func(from, to int) (n int) {
		for i := from; i < to; i++ {
			p := m.Picture(i)
			f := checked(t, enc, dec, p)
			if i > 0 && f.Keyframe {
				t.Fatalf("frame %d is a keyframe", i)
			}
			n += len(f.Data)
			p.Release()
		}
		return n
	}
	size(0, 10) // the keyframe and the refinement after it
	high := size(10, 40)
	enc.SetBitrate(100_000)
	low := size(40, 70)
	t.Logf("30 frames: %d bytes at the default target, %d at 100 kbit/s", high, low)
	if low >= high {
		t.Fatalf("%d bytes after SetBitrate(100000), %d before: want fewer", low, high)
	}
}
