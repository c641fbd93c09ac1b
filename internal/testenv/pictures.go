package testenv

// Test sequences for the video encoders' tests and benchmarks: moving
// desktops as raw media.Pictures, and the Y-PSNR of a decoded frame.

import (
	"image"
	"math"
	"time"

	"github.com/deskcast/deskcast/media"
)

// Scroll is a desktop taller than the screen, shown through a window that
// moves down step rows a frame: a full-screen scroll, the busiest common case.
type Scroll struct {
	w, h, step, frames int
	pix                []byte
	stride             int
	format             media.PixFmt
}

// NewScroll returns a scroll over frames frames of a w×h screen.
func NewScroll(w, h, step, frames int, format media.PixFmt, seed uint64) *Scroll {
	img := Desktop(w, h+step*frames, seed)
	pix := img.Pix
	if format == media.BGRX {
		pix = ToBGRX(pix)
	}
	return &Scroll{w: w, h: h, step: step, frames: frames, pix: pix, stride: img.Stride, format: format}
}

// Picture is frame i (modulo frames), captured at 30 fps.
func (s *Scroll) Picture(i int) *media.Picture {
	off := (i % s.frames) * s.step * s.stride
	p := media.NewPicture(s.pix[off:], s.w, s.h, s.stride, s.format, nil)
	p.Captured = Epoch.Add(time.Duration(i) * time.Second / 30)
	p.Grab = time.Millisecond
	return p
}

// Epoch is when the test sequences' frame 0 is captured.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ToBGRX returns RGBA pixels in X11's byte order.
func ToBGRX(rgba []byte) []byte {
	out := make([]byte, len(rgba))
	for i := 0; i+3 < len(rgba); i += 4 {
		out[i], out[i+1], out[i+2], out[i+3] = rgba[i+2], rgba[i+1], rgba[i], 0
	}
	return out
}

// DesktopPicture is a still w×h picture of testenv.Desktop in format.
func DesktopPicture(w, h int, format media.PixFmt, seed uint64) *media.Picture {
	return NewScroll(w, h, 0, 1, format, seed).Picture(0)
}

// LumaPSNR is the Y-PSNR of a decoded picture against the source, whose luma
// is worked out here (BT.601 studio swing, libyuv's matrix, which H.264 and
// VP8 decoders assume by default) over the decoded size.
func LumaPSNR(p *media.Picture, img *image.YCbCr) float64 {
	b := img.Bounds()
	var sse float64
	for y := range b.Dy() {
		row := p.Pix[y*p.Stride:]
		for x := range b.Dx() {
			px := row[x*4 : x*4+4]
			r, g, bl := int(px[0]), int(px[1]), int(px[2])
			if p.Format == media.BGRX {
				r, bl = bl, r
			}
			want := (66*r+129*g+25*bl+128)>>8 + 16
			d := float64(want - int(img.Y[y*img.YStride+x]))
			sse += d * d
		}
	}
	if sse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(b.Dx()*b.Dy())/sse)
}

// nalTypes lists the types of the NAL units of an Annex-B access unit, and

type PictureSource interface {
	Picture(i int) *media.Picture
}

// Moving is a busy desktop at work: a window dragged across it (12 px right
// and 6 down a frame) and a video playing in a corner (a pattern that moves
// without being a plain translation), everything else still.
type Moving struct {
	w, h  int
	base  []byte // the still desktop, RGBA
	win   *image.RGBA
	buf   []byte
	out   media.PixFmt
	video image.Rectangle
}

// NewMoving returns the moving desktop of a w×h screen.
func NewMoving(w, h int, format media.PixFmt, seed uint64) *Moving {
	return &Moving{
		w: w, h: h, out: format,
		base:  Desktop(w, h, seed).Pix,
		win:   Desktop(w*5/12, h*5/9, seed+1),
		buf:   make([]byte, w*h*4),
		video: image.Rect(w*2/3, h/10, w*2/3+w/4, h/10+h/4),
	}
}

// Picture composes frame i into the one buffer it reuses: release the last
// picture before asking for the next.
func (m *Moving) Picture(i int) *media.Picture {
	stride := m.w * 4
	copy(m.buf, m.base)
	for y := m.video.Min.Y; y < m.video.Max.Y; y++ {
		row := m.buf[y*stride:]
		for x := m.video.Min.X; x < m.video.Max.X; x++ {
			fx, fy, ft := float64(x), float64(y), float64(i)
			r := 128 + 60*math.Sin(fx/23+ft/5) + 50*math.Sin(fy/31-ft/9)
			g := 128 + 60*math.Sin(fy/19+ft/7) + 50*math.Sin((fx+fy)/41+ft/4)
			b := 128 + 70*math.Sin((fx-fy)/29-ft/6) + 40*math.Sin(fx/13+ft/11)
			row[x*4], row[x*4+1], row[x*4+2], row[x*4+3] = uint8(r), uint8(g), uint8(b), 255
		}
	}
	wb := m.win.Bounds()
	span := m.w - wb.Dx()
	ox := (i * 12) % (2 * span) // back and forth
	if ox > span {
		ox = 2*span - ox
	}
	oy := (i * 6) % (m.h - wb.Dy())
	for y := range wb.Dy() {
		copy(m.buf[(oy+y)*stride+ox*4:], m.win.Pix[y*m.win.Stride:y*m.win.Stride+wb.Dx()*4])
	}
	if m.out == media.BGRX {
		for i := 0; i < len(m.buf); i += 4 {
			m.buf[i], m.buf[i+2] = m.buf[i+2], m.buf[i]
		}
	}
	p := media.NewPicture(m.buf, m.w, m.h, stride, m.out, nil)
	p.Captured = Epoch.Add(time.Duration(i) * time.Second / 30)
	return p
}

// Slides shows a new desktop every `every` frames, going round `count` of
// them, each drawn once.
type Slides struct {
	w, h, every, count int
	cache              map[int]*media.Picture
}

// NewSlides returns the slides of a w×h screen.
func NewSlides(w, h, every, count int) *Slides {
	return &Slides{w: w, h: h, every: every, count: count, cache: map[int]*media.Picture{}}
}

func (s *Slides) Picture(i int) *media.Picture {
	k := i / s.every % s.count
	p, ok := s.cache[k]
	if !ok {
		p = DesktopPicture(s.w, s.h, media.BGRX, uint64(100+k))
		s.cache[k] = p
	}
	q := media.NewPicture(p.Pix, p.Width, p.Height, p.Stride, p.Format, nil)
	q.Captured = Epoch.Add(time.Duration(i) * time.Second / 30)
	return q
}
