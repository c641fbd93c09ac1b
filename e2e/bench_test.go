package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// BenchmarkShare1080p measures the real binary sharing a busy 1920×1080 Xvfb
// screen at --fps 30: delivered fps with 1 and 50 viewers, the server's CPU
// and RSS (read from /proc, so the viewers' own cost is not counted),
// glass-to-glass latency and bandwidth on a still and on a changing screen.
// It reports figures; it has no pass/fail thresholds. Run with `make bench`.
func BenchmarkShare1080p(b *testing.B) {
	x := testenv.StartX(b, 1920, 1080)
	desk := testenv.Desktop(1920, 1080, 1)
	if err := x.Put(desk); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := startHeadless(b, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--fps", "30", "--quality", "70", "--max-viewers", "-1")
	proc := procStats{pid: cmd.Process.Pid}
	stream := base + "/stream.mjpg?pointer=0&t=" + token // as the page asks for it

	// A changing screen: a block moves across the desktop 60 times a second,
	// so every capture at 30 fps sees a change and re-encodes the whole frame.
	changing := func() (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Second / 60)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-t.C:
				}
				xx := 100 + (i*13)%1600
				_ = x.FillRect(image.Rect(xx, 900, xx+120, 1000), color.RGBA{uint8(i * 37), uint8(i * 91), uint8(i * 53), 255})
			}
		})
		return func() { close(done); wg.Wait(); _ = x.Put(desk) }
	}

	type phase struct{ fps, minFPS, cpu, sys, rssMB, kbps float64 }
	measure := func(viewers int, d time.Duration) phase {
		vs := make([]*counter, viewers)
		for i := range vs {
			vs[i] = watch(b, stream)
		}
		time.Sleep(1500 * time.Millisecond) // let every viewer get going
		for _, v := range vs {
			v.reset()
		}
		u0, s0 := proc.cpuSplit()
		t0 := time.Now()
		time.Sleep(d)
		el := time.Since(t0).Seconds()
		u1, s1 := proc.cpuSplit()
		p := phase{cpu: (u1 + s1 - u0 - s0) / el * 100, sys: (s1 - s0) / el * 100, rssMB: proc.rssMB(), minFPS: 1e9}
		var frames, bytes float64
		for _, v := range vs {
			f := float64(v.frames.Load()) / el
			frames += f
			p.minFPS = min(p.minFPS, f)
			bytes += float64(v.bytes.Load())
			v.close()
		}
		p.fps = frames / float64(viewers)
		p.kbps = bytes / float64(viewers) / el / 1000
		time.Sleep(500 * time.Millisecond)
		return p
	}

	stop := changing()
	one := measure(1, 5*time.Second)
	fifty := measure(50, 5*time.Second)
	stop()
	still := measure(1, 10*time.Second)
	lat := latency(b, x, stream, 20)

	b.ReportMetric(one.fps, "fps/1-viewer")
	b.ReportMetric(fifty.fps, "fps/50-viewers")
	b.ReportMetric(one.cpu, "cpu%/1-viewer")
	b.ReportMetric(fifty.cpu, "cpu%/50-viewers")
	b.ReportMetric(fifty.rssMB, "RSS-MB/50-viewers")
	b.ReportMetric(lat[len(lat)/2], "latency-ms-median")
	b.ReportMetric(lat[len(lat)*95/100], "latency-ms-p95")
	b.ReportMetric(still.kbps, "KB/s-still")
	b.ReportMetric(one.kbps, "KB/s-changing")
	fmt.Fprintf(os.Stdout, `
Deskcast, 1920x1080 busy desktop, --fps 30 --quality 70 (%s)
  delivered fps        1 viewer: %.1f    50 viewers: %.1f avg, %.1f slowest
  server CPU (1 core)  1 viewer: %.0f%% (kernel %.0f%%)    50 viewers: %.0f%% (kernel %.0f%%, %.2fx)    still screen: %.1f%%
  server RSS           1 viewer: %.0f MB  50 viewers: %.0f MB
  glass-to-glass       median %.1f ms, p95 %.1f ms (n=%d)
  bandwidth/viewer     still screen: %.1f KB/s    changing screen: %.0f KB/s
`, encoderName(b, base), one.fps, fifty.fps, fifty.minFPS, one.cpu, one.sys, fifty.cpu, fifty.sys, fifty.cpu/one.cpu, still.cpu,
		one.rssMB, fifty.rssMB, lat[len(lat)/2], lat[len(lat)*95/100], len(lat), still.kbps, one.kbps)
}

func encoderName(b *testing.B, base string) string {
	resp, err := http.Get(base + "/api/status?t=" + token)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if i := bytes.Index(body, []byte(`"encoder":"`)); i >= 0 {
		rest := body[i+11:]
		return string(rest[:bytes.IndexByte(rest, '"')])
	}
	return "?"
}

// latency paints a marker n times on a still screen and times how long until
// a received frame shows it: from just before the paint request to the end
// of the first part that shows the colour, as a browser would complete it.
func latency(b *testing.B, x *testenv.X, url string, n int) []float64 {
	type part struct {
		at  time.Time
		jpg []byte
	}
	parts := make(chan part, 64)
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	go func() {
		defer close(parts)
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			jpg, err := io.ReadAll(p)
			if err != nil {
				return
			}
			parts <- part{time.Now(), jpg}
		}
	}()
	<-parts // the current frame
	colours := []color.RGBA{{250, 20, 20, 255}, {20, 250, 20, 255}, {20, 20, 250, 255}, {250, 250, 20, 255}}
	var out []float64
	for i := range n {
		time.Sleep(150 * time.Millisecond)
		for len(parts) > 0 {
			<-parts
		}
		c := colours[i%len(colours)]
		t0 := time.Now()
		if err := x.FillRect(image.Rect(860, 440, 1060, 640), c); err != nil {
			b.Fatal(err)
		}
		for {
			select {
			case p, ok := <-parts:
				if !ok {
					b.Fatal("stream ended")
				}
				img, err := jpeg.Decode(bytes.NewReader(p.jpg))
				if err == nil && near(img.At(960, 540), c) {
					out = append(out, float64(p.at.Sub(t0).Microseconds())/1000)
				} else {
					continue
				}
			case <-time.After(3 * time.Second):
				b.Fatalf("marker %d never showed", i)
			}
			break
		}
	}
	slices.Sort(out)
	return out
}

// counter is one viewer that reads a stream and counts frames and bytes.
type counter struct {
	frames, bytes atomic.Int64
	body          io.Closer
	done          chan struct{}
}

func watch(b *testing.B, url string) *counter {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	c := &counter{body: resp.Body, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			n, err := io.Copy(io.Discard, p)
			if err != nil {
				return
			}
			c.frames.Add(1)
			c.bytes.Add(n)
		}
	}()
	return c
}

func (c *counter) reset() { c.frames.Store(0); c.bytes.Store(0) }
func (c *counter) close() { c.body.Close(); <-c.done }

// procStats reads a process's CPU time and memory from /proc.
type procStats struct{ pid int }

// cpuSplit returns user and system CPU seconds.
func (p procStats) cpuSplit() (user, sys float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut / 100, st / 100 // USER_HZ is 100 on Linux
}

func (p procStats) rssMB() float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
