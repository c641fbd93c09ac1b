//go:build linux && cgo && !purego

package jpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/deskcast/deskcast/media"
)

// EncoderName says which JPEG encoder this build uses.
const EncoderName = "libjpeg-turbo"

// compressor compresses pictures with libjpeg-turbo into a reused C buffer
// and copies the result into a fresh Go slice, which viewers then share.
type compressor struct {
	h       C.tjhandle
	quality int
	buf     *C.uchar
	bufSize C.ulong
}

func newCompressor(quality int) (*compressor, error) {
	h := C.tjInitCompress()
	if h == nil {
		return nil, errors.New("initialising libjpeg-turbo")
	}
	return &compressor{h: h, quality: quality}, nil
}

func (c *compressor) compress(p *media.Picture) ([]byte, error) {
	if c.h == nil {
		return nil, errors.New("encoding jpeg: encoder closed")
	}
	if p.Width <= 0 || p.Height <= 0 || len(p.Pix) < (p.Height-1)*p.Stride+p.Width*4 {
		return nil, fmt.Errorf("encoding jpeg: bad picture %dx%d stride %d len %d", p.Width, p.Height, p.Stride, len(p.Pix))
	}
	need := C.tjBufSize(C.int(p.Width), C.int(p.Height), C.TJSAMP_420)
	if need > c.bufSize {
		if c.buf != nil {
			C.tjFree(c.buf)
		}
		c.buf = C.tjAlloc(C.int(need))
		if c.buf == nil {
			c.bufSize = 0
			return nil, errors.New("encoding jpeg: out of memory")
		}
		c.bufSize = need
	}
	pf := C.int(C.TJPF_BGRX)
	if p.Format == media.RGBA {
		pf = C.TJPF_RGBX
	}
	size := c.bufSize
	// NOREALLOC: the buffer is sized by tjBufSize, the worst case.
	rc := C.tjCompress2(c.h, (*C.uchar)(unsafe.Pointer(&p.Pix[0])), C.int(p.Width), C.int(p.Stride), C.int(p.Height),
		pf, &c.buf, &size, C.TJSAMP_420, C.int(c.quality), C.TJFLAG_FASTDCT|C.TJFLAG_NOREALLOC)
	if rc != 0 {
		return nil, fmt.Errorf("encoding jpeg: %s", C.GoString(C.tjGetErrorStr2(c.h)))
	}
	return C.GoBytes(unsafe.Pointer(c.buf), C.int(size)), nil
}

func (c *compressor) close() {
	if c.buf != nil {
		C.tjFree(c.buf)
		c.buf = nil
		c.bufSize = 0
	}
	if c.h != nil {
		C.tjDestroy(c.h)
		c.h = nil
	}
}
