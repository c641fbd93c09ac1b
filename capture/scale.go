package capture

import (
	"sync"

	"github.com/deskcast/deskcast/media"
)

// scaler downsizes frames with a bilinear filter. Its index and weight tables
// are computed once per size and its output buffers come back to a pool when
// their pictures are released, so the per-frame cost is one pass over the
// output pixels. A scaler is used from one goroutine; its pictures may be
// released from any.
type scaler struct {
	srcW, srcH, dstW, dstH int
	xOff                   []int    // byte offset of the left source pixel, per output column
	xW                     []uint32 // weight of the right source pixel, 0..256
	yOff                   []int    // source row index, per output row
	yW                     []uint32
	pool                   *bufPool // buffers of dstW×dstH pixels
}

// bufPool keeps released output buffers of one size for the next pictures.
type bufPool struct {
	size int
	mu   sync.Mutex
	free [][]byte
}

// maxPooled bounds the buffers a pool keeps: one picture being encoded per
// track and one waiting is the usual most.
const maxPooled = 4

func (p *bufPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	return make([]byte, p.size)
}

func (p *bufPool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < maxPooled {
		p.free = append(p.free, b)
	}
}

// scaledSize returns the size of a w×h frame fitted into maxWidth, keeping the
// aspect ratio and both sides even (what JPEG 4:2:0 likes best).
func scaledSize(w, h, maxWidth int) (int, int) {
	if maxWidth <= 0 || w <= maxWidth {
		return w, h
	}
	nh := h * maxWidth / w
	return maxWidth &^ 1, max(nh&^1, 2)
}

func (s *scaler) setup(srcW, srcH, dstW, dstH int) {
	if s.srcW == srcW && s.srcH == srcH && s.dstW == dstW && s.dstH == dstH {
		return
	}
	*s = scaler{srcW: srcW, srcH: srcH, dstW: dstW, dstH: dstH}
	s.xOff, s.xW = axis(srcW, dstW)
	for i := range s.xOff {
		s.xOff[i] *= 4
	}
	s.yOff, s.yW = axis(srcH, dstH)
	// Pictures of the old size still out return to the old pool, which then goes.
	s.pool = &bufPool{size: dstW * dstH * 4}
}

// axis maps each destination index to its left source index and the weight
// (0..256) of the source index after it, sampling at pixel centres.
func axis(src, dst int) ([]int, []uint32) {
	off := make([]int, dst)
	w := make([]uint32, dst)
	for i := range dst {
		// centre of dst pixel i in source coordinates, in 1/256 pixel
		c := ((2*i+1)*src*256)/(2*dst) - 128
		c = max(c, 0)
		p := c >> 8
		if p >= src-1 {
			p, c = src-1, (src-1)<<8
		}
		off[i] = p
		w[i] = uint32(c - p<<8)
	}
	return off, w
}

// scale returns p resized to dstW×dstH, as a new picture holding one
// reference; p is not kept.
func (s *scaler) scale(p *media.Picture, dstW, dstH int) *media.Picture {
	s.setup(p.Width, p.Height, dstW, dstH)
	out := s.pool.get()
	maxX := (p.Width - 1) * 4
	o := 0
	for y := range dstH {
		r0 := p.Pix[s.yOff[y]*p.Stride:]
		r1 := r0
		if s.yOff[y]+1 < p.Height {
			r1 = p.Pix[(s.yOff[y]+1)*p.Stride:]
		}
		wy := s.yW[y]
		for x := range dstW {
			a := s.xOff[x]
			b := min(a+4, maxX)
			wx := s.xW[x]
			for c := range 3 {
				top := uint32(r0[a+c])*(256-wx) + uint32(r0[b+c])*wx
				bot := uint32(r1[a+c])*(256-wx) + uint32(r1[b+c])*wx
				out[o+c] = byte((top*(256-wy) + bot*wy + 1<<15) >> 16)
			}
			out[o+3] = 255
			o += 4
		}
	}
	pool := s.pool
	return media.NewPicture(out, dstW, dstH, dstW*4, p.Format, func() { pool.put(out) })
}
