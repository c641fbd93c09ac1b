package capture

// scaler downsizes frames with a bilinear filter. Its index and weight tables
// are computed once per size and its output buffer is reused, so the per-frame
// cost is one pass over the output pixels.
type scaler struct {
	srcW, srcH, dstW, dstH int
	xOff                   []int    // byte offset of the left source pixel, per output column
	xW                     []uint32 // weight of the right source pixel, 0..256
	yOff                   []int    // source row index, per output row
	yW                     []uint32
	out                    []byte
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
	s.out = make([]byte, dstW*dstH*4)
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

// scale returns p resized to dstW×dstH; the result is valid until the next call.
func (s *scaler) scale(p Pixels, dstW, dstH int) Pixels {
	s.setup(p.Width, p.Height, dstW, dstH)
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
				s.out[o+c] = byte((top*(256-wy) + bot*wy + 1<<15) >> 16)
			}
			s.out[o+3] = 255
			o += 4
		}
	}
	return Pixels{Pix: s.out, Width: dstW, Height: dstH, Stride: dstW * 4, Format: p.Format}
}
