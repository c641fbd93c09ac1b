package jpeg_test

import (
	"strconv"
	"testing"

	"github.com/deskcast/deskcast/codec/jpeg"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// JPEG encoding of a 1920×1080 busy desktop. Run with `make bench`.
func BenchmarkEncode1080p(b *testing.B) {
	img := testenv.Desktop(1920, 1080, 1)
	p := media.NewPicture(img.Pix, 1920, 1080, img.Stride, media.RGBA, nil)
	for _, q := range []int{50, 70, 90} {
		b.Run(jpeg.EncoderName+"-q"+strconv.Itoa(q), func(b *testing.B) {
			enc, err := jpeg.New(q)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var n int
			for b.Loop() {
				f, err := enc.Encode(p)
				if err != nil {
					b.Fatal(err)
				}
				n = len(f.Data)
			}
			b.ReportMetric(float64(n)/1024, "KB/frame")
		})
	}
}
