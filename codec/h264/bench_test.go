package h264_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/media"
)

// BGRX and RGBA to I420 at 1080p through libyuv. Run with `make bench`.
func BenchmarkConvert1080p(b *testing.B) {
	needOpenH264(b)
	for _, tc := range []struct {
		name   string
		format media.PixFmt
	}{{"BGRX", media.BGRX}, {"RGBA", media.RGBA}} {
		b.Run(tc.name, func(b *testing.B) {
			p := desktop(1920, 1080, tc.format, 1)
			dst := make([]byte, 1920*1080*3/2)
			for b.Loop() {
				if err := h264.Convert(p, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
		})
	}
}

// H.264 encoding of a busy 1080p screen with the default options, a
// different picture every frame at 30 fps: "scroll" scrolls the whole desktop
// 8 rows a frame, "move" drags a window across it while a video plays in a
// corner, "slides" shows a new desktop every frame (the worst case, a whole
// new screen 30 times a second). The first frame is the IDR; the figures per
// frame are the later frames' (later-IDRs counts any IDR OpenH264 chose
// itself among them), Mbit/s is theirs at 30 fps, and dB is the Y-PSNR
// of every frame as OpenH264's decoder shows it. Run with `make bench`.
func BenchmarkEncode1080p(b *testing.B) {
	needOpenH264(b)
	const w, h = 1920, 1080
	for _, tc := range []struct {
		name string
		src  func(n int) source
	}{
		{"scroll", func(n int) source { return newScroll(w, h, 8, max(n, 2), media.BGRX, 1) }},
		{"move", func(int) source { return newMoving(w, h, media.BGRX, 1) }},
		{"slides", func(int) source { return newSlides(w, h, 1, 8) }},
	} {
		// layers=2 is what WebRTC viewers get: every other frame droppable.
		for _, layers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/layers=%d", tc.name, layers), func(b *testing.B) {
				enc, err := h264.New(h264.Options{TemporalLayers: layers})
				if err != nil {
					b.Fatal(err)
				}
				defer enc.Close()
				src := tc.src(max(b.N, 60)) // b.N is the -benchtime count, or 1 the first round
				var frames []*media.Frame
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					p := src.Picture(i)
					b.StartTimer()
					f, err := enc.Encode(p)
					if err != nil {
						b.Fatal(err)
					}
					p.Release()
					frames = append(frames, f)
				}
				report(b, src, frames)
			})
		}
	}
}

// report decodes the frames and reports their figures.
func report(b *testing.B, src source, frames []*media.Frame) {
	dec, err := h264.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	var pBytes, pFrames, idrs int
	var pTime time.Duration
	var sumDB, minDB float64 = 0, 99
	for i, f := range frames {
		if f == nil {
			continue // skipped: nothing to send, nothing to decode
		}
		if i == 0 {
			if !f.Keyframe {
				b.Fatal("the first frame is no keyframe")
			}
			b.ReportMetric(float64(len(f.Data)), "IDR-B")
			b.ReportMetric(float64(f.Encode.Microseconds())/1000, "IDR-ms")
		} else {
			if f.Keyframe {
				idrs++
			}
			pBytes += len(f.Data)
			pTime += f.Encode
			pFrames++
		}
		img, err := dec.Decode(f.Data)
		if err != nil || img == nil {
			b.Fatalf("decoding frame %d: %v", i, err)
		}
		p := src.Picture(i)
		db := lumaPSNR(p, img)
		p.Release()
		sumDB += db
		minDB = min(minDB, db)
	}
	if pFrames > 0 {
		b.ReportMetric(float64(pTime.Microseconds())/1000/float64(pFrames), "ms/frame")
		b.ReportMetric(float64(pBytes)/float64(pFrames), "B/frame")
		b.ReportMetric(float64(pBytes)/float64(pFrames)*8*30/1e6, "Mbit/s")
	}
	b.ReportMetric(float64(idrs), "later-IDRs")
	b.ReportMetric(sumDB/float64(len(frames)), "dB")
	b.ReportMetric(minDB, "min-dB")
}
