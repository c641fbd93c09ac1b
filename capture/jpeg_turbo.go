//go:build linux && cgo && !purego

package capture

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
)

// JPEGEncoderName says which JPEG encoder this build uses.
const JPEGEncoderName = "libjpeg-turbo"

// encoder compresses frames with libjpeg-turbo into a reused C buffer and
// copies the result into a fresh Go slice, which viewers then share.
type encoder struct {
	h       C.tjhandle
	quality int
	buf     *C.uchar
	bufSize C.ulong
}

func newEncoder(quality int) (*encoder, error) {
	h := C.tjInitCompress()
	if h == nil {
		return nil, errors.New("initialising libjpeg-turbo")
	}
	return &encoder{h: h, quality: quality}, nil
}

func (e *encoder) Encode(p Pixels) ([]byte, error) {
	if p.Width <= 0 || p.Height <= 0 || len(p.Pix) < (p.Height-1)*p.Stride+p.Width*4 {
		return nil, fmt.Errorf("encoding jpeg: bad frame %dx%d stride %d len %d", p.Width, p.Height, p.Stride, len(p.Pix))
	}
	need := C.tjBufSize(C.int(p.Width), C.int(p.Height), C.TJSAMP_420)
	if need > e.bufSize {
		if e.buf != nil {
			C.tjFree(e.buf)
		}
		e.buf = C.tjAlloc(C.int(need))
		if e.buf == nil {
			e.bufSize = 0
			return nil, errors.New("encoding jpeg: out of memory")
		}
		e.bufSize = need
	}
	pf := C.int(C.TJPF_BGRX)
	if p.Format == RGBA {
		pf = C.TJPF_RGBX
	}
	size := e.bufSize
	// NOREALLOC: the buffer is sized by tjBufSize, the worst case.
	rc := C.tjCompress2(e.h, (*C.uchar)(unsafe.Pointer(&p.Pix[0])), C.int(p.Width), C.int(p.Stride), C.int(p.Height),
		pf, &e.buf, &size, C.TJSAMP_420, C.int(e.quality), C.TJFLAG_FASTDCT|C.TJFLAG_NOREALLOC)
	if rc != 0 {
		return nil, fmt.Errorf("encoding jpeg: %s", C.GoString(C.tjGetErrorStr2(e.h)))
	}
	return C.GoBytes(unsafe.Pointer(e.buf), C.int(size)), nil
}

func (e *encoder) Close() {
	if e.buf != nil {
		C.tjFree(e.buf)
		e.buf = nil
	}
	if e.h != nil {
		C.tjDestroy(e.h)
		e.h = nil
	}
}
