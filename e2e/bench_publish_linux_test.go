package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/web"
)

// BenchmarkPublish measures publishing to a media server: the real binary
// shares a busy 1280×720 desktop (testenv.Busy) at --fps 30 to one LAN
// viewer, first alone, then while also publishing over WHIP to a real
// MediaMTX that 30 light WHEP readers (pion clients that do not decode)
// watch. It reports Deskcast's CPU without and with publishing, the LAN
// viewer's fps both times, and each reader's fps and delay from Deskcast's
// sending to the reader (At minus Sent: the sender reports MediaMTX passes
// on map RTP time to Deskcast's wall clock, on this one machine). Figures,
// not a pass/fail test; 20 s a phase.
func BenchmarkPublish(b *testing.B) {
	const window = 20 * time.Second
	x := testenv.StartX(b, 1280, 720)
	x.StartBusy(b, 1)
	mtx := testenv.MediaMTX(b)

	type figures struct {
		cpu, lanFPS float64
		readers     []readerStats
		mtxCPU      float64
	}
	run := func(publish bool) figures {
		port := freePort(b)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--fps", "30"}
		if publish {
			args = append(args, "--publish", mtx.WHIPURL("deskcast"), "--publish-token", mtx.Token())
		}
		cmd := startHeadless(b, args...)
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		lan, err := whepclient.Connect(context.Background(), base+"/whep?t="+token, whepclient.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer lan.Close()
		var readers []*whepclient.Client
		if publish {
			mtx.WaitPath("deskcast", "published", 20*time.Second, testenv.Online)
			for range 30 {
				r, err := whepclient.Connect(context.Background(), mtx.WHEPURL("deskcast"), whepclient.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				readers = append(readers, r)
			}
		}
		time.Sleep(5 * time.Second) // joins, keyframes, the bitrate settling
		stats := make([]readerStats, len(readers))
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i, r := range readers {
			wg.Go(func() { stats[i] = readFor(r, stop) })
		}
		var lanStats readerStats
		wg.Go(func() { lanStats = readFor(lan, stop) })
		proc := procStats{pid: cmd.Process.Pid}
		mproc := procStats{pid: mtx.Pid()}
		u0, s0 := proc.cpuSplit()
		mu0, ms0 := mproc.cpuSplit()
		time.Sleep(window)
		u1, s1 := proc.cpuSplit()
		mu1, ms1 := mproc.cpuSplit()
		close(stop)
		wg.Wait()
		if publish {
			var st web.Status
			resp, err := http.Get(base + "/api/status?t=" + token)
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
			}
			if err != nil || st.Publish == nil || st.Publish.State != "live" {
				b.Errorf("publishing %+v at the end (%v)", st.Publish, err)
			}
		}
		return figures{cpu: (u1 + s1 - u0 - s0) / window.Seconds() * 100, lanFPS: lanStats.fps(window), readers: stats,
			mtxCPU: (mu1 + ms1 - mu0 - ms0) / window.Seconds() * 100}
	}
	alone := run(false)
	pub := run(true)

	var fps, lat, p95 []float64
	for _, r := range pub.readers {
		fps = append(fps, r.fps(window))
		if len(r.lat) > 0 {
			slices.Sort(r.lat)
			lat = append(lat, r.lat[len(r.lat)/2])
			p95 = append(p95, r.lat[len(r.lat)*95/100])
		}
	}
	slices.Sort(fps)
	b.ReportMetric(pub.cpu-alone.cpu, "publish-cpu-points")
	b.ReportMetric(median(fps), "reader-fps-median")
	fmt.Printf(`
Deskcast publishing over WHIP to MediaMTX (busy 1280x720 desktop, --fps 30, one LAN viewer; 30 WHEP readers on MediaMTX)
  Deskcast CPU             %.1f%% of a core alone, %.1f%% publishing: +%.1f points (target ≤ 5)
  LAN viewer               %.1f fps alone, %.1f fps while publishing
  30 readers on MediaMTX   fps median %.1f, min %.1f; send-to-reader delay median %.0f ms, p95 (median of the readers') %.0f ms
  MediaMTX CPU             %.1f%% of a core
`, alone.cpu, pub.cpu, pub.cpu-alone.cpu, alone.lanFPS, pub.lanFPS, median(fps), fps[0], median(lat), median(p95), pub.mtxCPU)
}

// readerStats is what one light WHEP client received.
type readerStats struct {
	frames int
	lat    []float64 // ms, At minus Sent, per frame with a sender report
}

func (r readerStats) fps(d time.Duration) float64 { return float64(r.frames) / d.Seconds() }

// readFor counts c's frames and their delays until stop closes.
func readFor(c *whepclient.Client, stop chan struct{}) readerStats {
	for len(c.Frames) > 0 {
		<-c.Frames
	}
	var s readerStats
	for {
		select {
		case f := <-c.Frames:
			s.frames++
			if !f.Sent.IsZero() {
				if d := f.At.Sub(f.Sent); d > 0 && d < 10*time.Second {
					s.lat = append(s.lat, float64(d.Microseconds())/1000)
				}
			}
		case <-stop:
			return s
		}
	}
}
