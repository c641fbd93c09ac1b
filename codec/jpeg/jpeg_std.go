//go:build !linux || !cgo || purego

package jpeg

import (
	"bytes"
	"fmt"
	"image"
	stdjpeg "image/jpeg"

	"github.com/deskcast/deskcast/media"
)

// EncoderName says which JPEG encoder this build uses.
const EncoderName = "image/jpeg"

// compressor is the pure-Go fallback for platforms without libjpeg-turbo. It
// is about 7x slower at 1080p; use --max-width to keep the frame rate up.
type compressor struct {
	quality int
	rgba    *image.RGBA
	buf     bytes.Buffer
}

func newCompressor(quality int) (*compressor, error) { return &compressor{quality: quality}, nil }

func (c *compressor) compress(p *media.Picture) ([]byte, error) {
	if p.Width <= 0 || p.Height <= 0 || len(p.Pix) < (p.Height-1)*p.Stride+p.Width*4 {
		return nil, fmt.Errorf("encoding jpeg: bad picture %dx%d stride %d len %d", p.Width, p.Height, p.Stride, len(p.Pix))
	}
	if c.rgba == nil || c.rgba.Rect.Dx() != p.Width || c.rgba.Rect.Dy() != p.Height {
		c.rgba = image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	}
	for y := range p.Height {
		src := p.Pix[y*p.Stride : y*p.Stride+p.Width*4]
		dst := c.rgba.Pix[y*c.rgba.Stride:]
		if p.Format == media.RGBA {
			copy(dst, src)
			continue
		}
		for i := 0; i < len(src); i += 4 {
			dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i+2], src[i+1], src[i], 255
		}
	}
	c.buf.Reset()
	if err := stdjpeg.Encode(&c.buf, c.rgba, &stdjpeg.Options{Quality: c.quality}); err != nil {
		return nil, fmt.Errorf("encoding jpeg: %w", err)
	}
	return bytes.Clone(c.buf.Bytes()), nil
}

func (c *compressor) close() {}
