//go:build !linux || !cgo || purego

package capture

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// JPEGEncoderName says which JPEG encoder this build uses.
const JPEGEncoderName = "image/jpeg"

// encoder is the pure-Go fallback for platforms without libjpeg-turbo. It is
// about 7x slower at 1080p; use --max-width to keep the frame rate up.
type encoder struct {
	quality int
	rgba    *image.RGBA
	buf     bytes.Buffer
}

func newEncoder(quality int) (*encoder, error) { return &encoder{quality: quality}, nil }

func (e *encoder) Encode(p Pixels) ([]byte, error) {
	if e.rgba == nil || e.rgba.Rect.Dx() != p.Width || e.rgba.Rect.Dy() != p.Height {
		e.rgba = image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	}
	for y := range p.Height {
		src := p.Pix[y*p.Stride : y*p.Stride+p.Width*4]
		dst := e.rgba.Pix[y*e.rgba.Stride:]
		if p.Format == RGBA {
			copy(dst, src)
			continue
		}
		for i := 0; i < len(src); i += 4 {
			dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i+2], src[i+1], src[i], 255
		}
	}
	e.buf.Reset()
	if err := jpeg.Encode(&e.buf, e.rgba, &jpeg.Options{Quality: e.quality}); err != nil {
		return nil, fmt.Errorf("encoding jpeg: %w", err)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

func (e *encoder) Close() {}
