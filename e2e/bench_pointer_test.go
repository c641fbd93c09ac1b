package e2e

import (
	"fmt"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/internal/testenv"
)

// BenchmarkPointer measures the presenter's pointer moving over a still
// 1920×1080 screen, watched by the viewer page in Chromium (MJPEG picture,
// the pointer over its own socket): the position updates the page gets a
// second, the delay from a move to the page having it (median and p95), the
// server's CPU (read from /proc, the real binary) and the bytes a second the
// page receives for the pointer. It reports figures; no pass/fail thresholds.
func BenchmarkPointer(b *testing.B) {
	x := testenv.StartX(b, 1920, 1080)
	if err := x.Put(testenv.Desktop(1920, 1080, 1)); err != nil {
		b.Fatal(err)
	}
	if err := x.SetCursor(image.Rectangle{}, testenv.GlyphArrow, arrowRed); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--fps", "30", "--audio", "none")
	proc := procStats{pid: cmd.Process.Pid}
	ctx := testenv.Browser(b, 1280, 720)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token+"&transport=mjpeg")); err != nil {
		b.Fatal(err)
	}
	evalB := func(js string) float64 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for evalB("window.deskcast.pointer.shape ? 1 : 0") == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the page got no pointer shape within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the picture settles; the screen stays still from here

	const secs = 5
	// The same still screen with the pointer still, for the share's own
	// cost (the page's status polls, the capture's safety poll).
	ui, si := proc.cpuSplit()
	time.Sleep(secs * time.Second)
	ue, se := proc.cpuSplit()
	idle := (ue - ui + se - si) / secs * 100
	u0, s0 := proc.cpuSplit()
	n0, by0 := evalB("window.deskcast.pointer.updates"), evalB("window.deskcast.pointer.bytes")
	evalB("window.deskcast.pointer.log.length = 0, 0")
	// The pointer moves 60 times a second along a line, one new pixel per
	// step, each move's time kept by its x.
	sent := map[int]time.Time{}
	start := time.Now()
	tick := time.NewTicker(time.Second / 60)
	for i := 0; time.Since(start) < secs*time.Second; i++ {
		<-tick.C
		px := 200 + i%1500
		sent[px] = time.Now()
		if err := x.Warp(px, 500); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	elapsed := time.Since(start).Seconds()
	time.Sleep(200 * time.Millisecond)
	u1, s1 := proc.cpuSplit()
	n1, by1 := evalB("window.deskcast.pointer.updates"), evalB("window.deskcast.pointer.bytes")
	// The page's log: [time ms, x fraction, y, visible] per position.
	logs, err := chromedp.Run(ctx, chromedp.Evaluate[[][]float64]("window.deskcast.pointer.log.map(function (e) { return [e[0], e[1], e[2]]; })"))
	if err != nil {
		b.Fatal(err)
	}
	var delays []float64
	for _, e := range logs {
		px := int(e[1] * 1920) // the fraction is at the pixel's centre
		if t0, ok := sent[px]; ok {
			delays = append(delays, float64(time.UnixMilli(int64(e[0])).Sub(t0).Microseconds())/1000)
		}
	}
	slices.Sort(delays)
	pct := func(p float64) float64 {
		if len(delays) == 0 {
			return 0
		}
		return delays[min(len(delays)-1, int(p*float64(len(delays))))]
	}
	cpu := (u1 - u0 + s1 - s0) / elapsed * 100
	b.ReportMetric((n1-n0)/elapsed, "updates/s")
	b.ReportMetric(pct(0.5), "delay-ms-p50")
	b.ReportMetric(pct(0.95), "delay-ms-p95")
	b.ReportMetric(cpu, "server-cpu-%")
	b.ReportMetric(idle, "server-cpu-still-%")
	b.ReportMetric((by1-by0)/elapsed/1024, "KB/s")
	b.Logf("pointer moving at 60 Hz on a still 1080p screen for %.1f s: %.0f updates/s at the page, delay median %.1f ms, p95 %.1f ms (%d matched), server CPU %.2f%% of a core (%.2f%% with the pointer still), %.1f KB/s to the page",
		elapsed, (n1-n0)/elapsed, pct(0.5), pct(0.95), len(delays), cpu, idle, (by1-by0)/elapsed/1024)
}
