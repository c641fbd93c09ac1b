package jpeg_test

import (
	"bytes"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/jpeg"
	"github.com/deskcast/deskcast/media"
)

// quadrants returns a w×h picture in format f with four quadrants of colour,
// laid out with stride padding so that Stride is honoured.
func quadrants(w, h int, f media.PixFmt, cs [4]color.RGBA) *media.Picture {
	stride := w*4 + 64
	pix := make([]byte, stride*h)
	for y := range h {
		for x := range w {
			c := cs[2*(2*y/h)+2*x/w]
			o := y*stride + x*4
			if f == media.BGRX {
				pix[o], pix[o+1], pix[o+2], pix[o+3] = c.B, c.G, c.R, 0
			} else {
				pix[o], pix[o+1], pix[o+2], pix[o+3] = c.R, c.G, c.B, 255
			}
		}
	}
	return media.NewPicture(pix, w, h, stride, f, nil)
}

func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) bool { v := int(x>>8) - int(y>>8); return v > -24 && v < 24 }
	return d(r1, r2) && d(g1, g2) && d(b1, b2)
}

func TestEncode(t *testing.T) {
	cs := [4]color.RGBA{{220, 30, 30, 255}, {30, 200, 60, 255}, {30, 60, 220, 255}, {255, 255, 255, 255}}
	for _, tc := range []struct {
		name   string
		format media.PixFmt
	}{{"BGRX", media.BGRX}, {"RGBA", media.RGBA}} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := jpeg.New(80)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			p := quadrants(160, 120, tc.format, cs)
			defer p.Release()
			p.Captured, p.Grab = time.Now().Add(-time.Second), 3*time.Millisecond
			for range 2 { // the second time through the encoder's reused buffers
				f, err := enc.Encode(p)
				if err != nil {
					t.Fatal(err)
				}
				if f.Codec != media.JPEG || !f.Keyframe || f.Width != 160 || f.Height != 120 ||
					!f.Captured.Equal(p.Captured) || f.Grab != p.Grab || f.Encode <= 0 {
					t.Fatalf("frame %+v", *f)
				}
				img, err := stdjpeg.Decode(bytes.NewReader(f.Data))
				if err != nil {
					t.Fatalf("not a JPEG: %v", err)
				}
				if b := img.Bounds(); b != image.Rect(0, 0, 160, 120) {
					t.Fatalf("decoded %v", b)
				}
				for i, pt := range []image.Point{{40, 30}, {120, 30}, {40, 90}, {120, 90}} {
					if got := img.At(pt.X, pt.Y); !near(got, cs[i]) {
						t.Fatalf("pixel %v = %v, want %v", pt, got, cs[i])
					}
				}
			}
		})
	}
	t.Run("bad picture", func(t *testing.T) {
		enc, err := jpeg.New(80)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		p := media.NewPicture(make([]byte, 100), 160, 120, 640, media.BGRX, nil)
		if _, err := enc.Encode(p); err == nil {
			t.Fatal("a picture shorter than its size encoded without an error")
		}
	})
	t.Run("close twice", func(t *testing.T) {
		enc, err := jpeg.New(50)
		if err != nil {
			t.Fatal(err)
		}
		enc.ForceKeyframe()
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestQuality(t *testing.T) {
	for _, tc := range []struct {
		q  int
		ok bool
	}{{0, false}, {1, true}, {70, true}, {100, true}, {101, false}, {-5, false}} {
		err := jpeg.ValidateQuality(tc.q)
		enc, newErr := jpeg.New(tc.q)
		if enc != nil {
			enc.Close()
		}
		if (err == nil) != tc.ok || (newErr == nil) != tc.ok {
			t.Errorf("quality %d: ValidateQuality = %v, New = %v; want ok %v", tc.q, err, newErr, tc.ok)
		}
	}
}
