package e2e

// The light viewers of BenchmarkWebRTC1080p: the test binary run again
// inside a viewer namespace, holding many WHEP (pion, no decoding) or MJPEG
// viewers and answering the benchmark's commands on stdin with JSON on
// stdout.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
)

// viewersEnv, when set, makes the test binary the viewers' helper: its
// value is the helper's helperConfig as JSON.
const viewersEnv = "DESKCAST_BENCH_VIEWERS"

// init runs the helper instead of the tests when the benchmark started this
// binary as one (before TestMain and flag parsing: the helper takes none).
func init() {
	if cfg := os.Getenv(viewersEnv); cfg != "" {
		os.Exit(viewersHelper(cfg, os.Stdin, os.Stdout))
	}
}

// helperConfig says what the helper's viewers watch.
type helperConfig struct {
	Kind string `json:"kind"` // "webrtc" or "mjpeg"
	URL  string `json:"url"`  // POST /whep or GET /stream.mjpg, with the token
}

// clientStats is one viewer's figures over a measure window.
type clientStats struct {
	FPS      float64 `json:"fps"`
	WorstFPS float64 `json:"worst_fps"` // its slowest whole second
	Kbps     float64 `json:"kbps"`      // payload: H.264 access units or JPEGs
	LatMed   float64 `json:"lat_med"`   // ms from the sender's report clock to frame complete; -1 without
	LatP95   float64 `json:"lat_p95"`
	// Keyframes received (WebRTC) and streams reopened after the server dropped them (MJPEG).
	Keyframes int `json:"keyframes"`
	Reopened  int `json:"reopened"`
	// Frames are its frames in the window: RTP time (WebRTC, unwrapped to
	// 64 bits, 90 kHz; 0 for MJPEG) and when each was complete (unix ns).
	Frames [][2]int64 `json:"frames,omitempty"`
}

// frameSample is one received frame kept for Y-PSNR: a raw luma plane
// (WebRTC, decoded with OpenH264) or a JPEG file (MJPEG).
type frameSample struct {
	File string `json:"file"`
	At   int64  `json:"at_ns"` // unix nanoseconds, when it was complete
	W    int    `json:"w"`
	H    int    `json:"h"`
}

// helperReply is the helper's answer to one command.
type helperReply struct {
	Clients []clientStats `json:"clients,omitempty"`
	TTFP    []float64     `json:"ttfp_ms,omitempty"` // join: request to first whole frame, ms; -1 for none within 10 s
	Samples []frameSample `json:"samples,omitempty"`
	Err     string        `json:"err,omitempty"`
}

// lightViewer is one viewer in the helper and what it counted since the
// last reset.
type lightViewer struct {
	mu       sync.Mutex
	start    time.Time   // of the window
	arrivals []time.Time // frames complete in the window
	rtpTimes []int64     // their RTP times, unwrapped
	rtpLast  uint32
	rtpExt   int64
	lat      []float64
	bytes    int64
	// keyframes and reopened (MJPEG streams dropped by the server) count in the window.
	keyframes, reopened int
	first               chan struct{} // closed at the first frame
	once                sync.Once
	stop                func()
	// onFrame, if set, sees every frame (the sampler).
	onFrame func(data []byte, at time.Time)
}

func (v *lightViewer) frame(data []byte, at time.Time, lat float64, key bool, ts uint32) {
	first := false
	v.once.Do(func() { close(v.first); first = true })
	v.mu.Lock()
	if first {
		v.rtpLast = ts
	}
	v.rtpExt += int64(int32(ts - v.rtpLast))
	v.rtpLast = ts
	v.rtpTimes = append(v.rtpTimes, v.rtpExt)
	if key {
		v.keyframes++
	}
	v.arrivals = append(v.arrivals, at)
	v.bytes += int64(len(data))
	if lat >= 0 {
		v.lat = append(v.lat, lat)
	}
	f := v.onFrame
	v.mu.Unlock()
	if f != nil {
		f(data, at)
	}
}

func (v *lightViewer) reset() {
	v.mu.Lock()
	v.start, v.arrivals, v.rtpTimes, v.lat, v.bytes, v.keyframes, v.reopened = time.Now(), v.arrivals[:0], v.rtpTimes[:0], v.lat[:0], 0, 0, 0
	v.mu.Unlock()
}

func (v *lightViewer) stats() clientStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	el := time.Since(v.start).Seconds()
	s := clientStats{FPS: float64(len(v.arrivals)) / el, Kbps: float64(v.bytes) * 8 / el / 1000, LatMed: -1, LatP95: -1,
		Keyframes: v.keyframes, Reopened: v.reopened}
	secs := int(el)
	counts := make([]int, secs)
	for _, a := range v.arrivals {
		if i := int(a.Sub(v.start).Seconds()); i < secs {
			counts[i]++
		}
	}
	s.WorstFPS = s.FPS
	if secs > 0 {
		s.WorstFPS = float64(slices.Min(counts))
	}
	if len(v.lat) > 0 {
		l := slices.Clone(v.lat)
		slices.Sort(l)
		s.LatMed, s.LatP95 = l[len(l)/2], l[len(l)*95/100]
	}
	return s
}

// watchWebRTC connects a WHEP viewer that counts frames and their latency
// by its sender reports.
func watchWebRTC(ctx context.Context, url string, v *lightViewer) error {
	c, err := whepclient.Connect(ctx, url, whepclient.Options{})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-c.Frames:
				lat := -1.0
				if !f.Sent.IsZero() {
					lat = float64(f.At.Sub(f.Sent).Microseconds()) / 1000
				}
				v.frame(f.Data, f.At, lat, f.Keyframe, f.Timestamp)
			case <-c.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	v.stop = func() { _ = c.Close(); <-done }
	return nil
}

// watchMJPEG opens an MJPEG stream that counts parts. Like the viewer
// page, it opens the stream again 1 s after the server drops it (the server
// does when a write takes over 5 s).
func watchMJPEG(ctx context.Context, url string, v *lightViewer) error {
	ctx, cancel := context.WithCancel(ctx)
	// Its own connection per viewer, as browsers do for a stream.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	open := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		return client.Do(req)
	}
	resp, err := open()
	if err != nil {
		cancel()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			mr := multipart.NewReader(resp.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				jpg, err := io.ReadAll(p)
				if err != nil {
					break
				}
				v.frame(jpg, time.Now(), -1, false, 0)
			}
			resp.Body.Close()
			v.mu.Lock()
			v.reopened++
			v.mu.Unlock()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				if resp, err = open(); err == nil {
					break
				}
			}
		}
	}()
	v.stop = func() { cancel(); <-done }
	return nil
}

// viewersHelper runs the helper: commands on in, one JSON line each on out.
//
//	join N GAP_MS          N more viewers, one every GAP_MS; answers with their times to first frame
//	measure MS             every viewer's figures over the next MS, with each frame's times
//	sample MS N DIR        a new viewer keeps N of its frames of the next MS in DIR (decoded luma
//	                       for WebRTC, JPEGs for MJPEG), then leaves
func viewersHelper(cfgJSON string, in io.Reader, out io.Writer) int {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "viewers helper:", err)
		return 2
	}
	watch := watchWebRTC
	if cfg.Kind == "mjpeg" {
		watch = watchMJPEG
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var all []*lightViewer
	defer func() {
		for _, v := range all {
			if v.stop != nil {
				v.stop()
			}
		}
	}()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		arg := func(i int) int {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.Atoi(f[i])
			return n
		}
		var r helperReply
		switch f[0] {
		case "join":
			n, gap := arg(1), time.Duration(arg(2))*time.Millisecond
			ttfp := make([]float64, n)
			var wg sync.WaitGroup
			for i := range n {
				if i > 0 {
					time.Sleep(gap)
				}
				v := &lightViewer{first: make(chan struct{}), start: time.Now()}
				t0 := time.Now()
				if err := watch(ctx, cfg.URL, v); err != nil {
					r.Err = err.Error()
					ttfp[i] = -1
					continue
				}
				all = append(all, v)
				wg.Go(func() {
					select {
					case <-v.first:
						ttfp[i] = float64(time.Since(t0).Microseconds()) / 1000
					case <-time.After(10 * time.Second):
						ttfp[i] = -1
					}
				})
			}
			wg.Wait()
			r.TTFP = ttfp
		case "measure":
			for _, v := range all {
				v.reset()
			}
			time.Sleep(time.Duration(arg(1)) * time.Millisecond)
			for _, v := range all {
				st := v.stats()
				v.mu.Lock()
				for i, a := range v.arrivals {
					st.Frames = append(st.Frames, [2]int64{v.rtpTimes[i], a.UnixNano()})
				}
				v.mu.Unlock()
				r.Clients = append(r.Clients, st)
			}
		case "sample":
			if len(f) < 4 {
				r.Err = "sample MS N DIR"
				break
			}
			samples, err := sampleFrames(ctx, cfg, watch, time.Duration(arg(1))*time.Millisecond, arg(2), f[3])
			r.Samples = samples
			if err != nil {
				r.Err = err.Error()
			}
		default:
			r.Err = "unknown command " + f[0]
		}
		if err := enc.Encode(r); err != nil {
			return 1
		}
	}
	return 0
}

// sampleFrames connects a viewer for d and keeps n of its frames, evenly
// spread, in dir. WebRTC frames are decoded from the first (a keyframe),
// each one, so that every kept picture is whole.
func sampleFrames(ctx context.Context, cfg helperConfig, watch func(context.Context, string, *lightViewer) error, d time.Duration, n int, dir string) ([]frameSample, error) {
	every := max(1, int(d.Seconds()*30)/max(n, 1))
	// A WebRTC joiner is first replayed the group of pictures since the last
	// keyframe, at once: those frames show the screen of seconds ago, not the
	// one painted just before they arrive, so none is kept for the first
	// second; every frame is decoded all the same.
	const settle = time.Second
	joined := time.Now()
	var (
		mu      sync.Mutex
		out     []frameSample
		count   int
		errDec  error
		decoder *h264.Decoder
	)
	if cfg.Kind == "webrtc" {
		dec, err := h264.NewDecoder()
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		decoder = dec
	}
	v := &lightViewer{first: make(chan struct{}), start: time.Now()}
	v.onFrame = func(data []byte, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		count++
		keep := count%every == 0 && len(out) < n && at.Sub(joined) > settle
		name := filepath.Join(dir, fmt.Sprintf("%s-%03d", cfg.Kind, count))
		if decoder == nil {
			if keep {
				if err := os.WriteFile(name+".jpg", data, 0o644); err == nil {
					out = append(out, frameSample{File: name + ".jpg", At: at.UnixNano()})
				}
			}
			return
		}
		img, err := decoder.Decode(data)
		if err != nil {
			errDec = err
			return
		}
		if img == nil || !keep {
			return
		}
		w, h := img.Rect.Dx(), img.Rect.Dy()
		y := make([]byte, 0, w*h)
		for row := range h {
			y = append(y, img.Y[row*img.YStride:][:w]...)
		}
		if err := os.WriteFile(name+".y", y, 0o644); err == nil {
			out = append(out, frameSample{File: name + ".y", At: at.UnixNano(), W: w, H: h})
		}
	}
	if err := watch(ctx, cfg.URL, v); err != nil {
		return nil, err
	}
	time.Sleep(d + settle)
	v.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(out) == 0 && errDec != nil {
		return nil, fmt.Errorf("decoding: %w", errDec)
	}
	return out, nil
}

// viewers is a running helper, seen from the benchmark.
type viewers struct {
	name string
	in   io.WriteCloser
	out  *bufio.Reader
}

// startViewers runs a helper in namespace ns whose viewers watch url (kind
// "webrtc": a WHEP URL; "mjpeg": a stream URL); it ends with the benchmark,
// or earlier with close.
func startViewers(b testing.TB, name, ns, kind, url string) *viewers {
	b.Helper()
	cfg, _ := json.Marshal(helperConfig{Kind: kind, URL: url})
	cmd := testenv.Command(ns, os.Args[0])
	cmd.Env = append(os.Environ(), viewersEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting the viewers' helper: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	v := &viewers{name: name, in: in, out: bufio.NewReader(outp)}
	b.Cleanup(func() { v.close(cmd, exited) })
	return v
}

// close ends the helper: stdin closed, then killed if it lingers.
func (v *viewers) close(cmd *exec.Cmd, exited chan struct{}) {
	v.in.Close()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// do sends a command and waits, at most for within, for its answer; it
// fails the benchmark when there is none (call it from the benchmark's
// goroutine only; others call try).
func (v *viewers) do(b testing.TB, within time.Duration, format string, a ...any) helperReply {
	b.Helper()
	r, err := v.try(within, format, a...)
	if err != nil {
		b.Fatal(err)
	}
	if r.Err != "" {
		b.Logf("%s: %q: %s", v.name, fmt.Sprintf(format, a...), r.Err)
	}
	return r
}

// try is do that returns its failure.
func (v *viewers) try(within time.Duration, format string, a ...any) (helperReply, error) {
	cmd := fmt.Sprintf(format, a...)
	var r helperReply
	if _, err := fmt.Fprintln(v.in, cmd); err != nil {
		return r, fmt.Errorf("%s: %q: %w", v.name, cmd, err)
	}
	type res struct {
		line []byte
		err  error
	}
	ch := make(chan res, 1)
	go func() { l, err := v.out.ReadBytes('\n'); ch <- res{l, err} }()
	select {
	case got := <-ch:
		if got.err != nil {
			return r, fmt.Errorf("%s: %q: no answer: %w", v.name, cmd, got.err)
		}
		if err := json.Unmarshal(got.line, &r); err != nil {
			return r, fmt.Errorf("%s: %q: answer %q: %w", v.name, cmd, got.line, err)
		}
	case <-time.After(within):
		return r, fmt.Errorf("%s: %q: no answer within %v", v.name, cmd, within)
	}
	return r, nil
}

// join adds n viewers, one every gap, and returns their times to first frame.
func (v *viewers) join(b testing.TB, n int, gap time.Duration) []float64 {
	b.Helper()
	return v.do(b, time.Duration(n)*gap+30*time.Second, "join %d %d", n, gap.Milliseconds()).TTFP
}

// measure returns every viewer's figures over d; any goroutine may call it.
func (v *viewers) measure(d time.Duration) ([]clientStats, error) {
	r, err := v.try(d+30*time.Second, "measure %d", d.Milliseconds())
	return r.Clients, err
}

// median returns the middle of xs (NaN for none), ignoring negative values
// (figures that were not there).
func median(xs []float64) float64 { return quantile(xs, 0.5) }

func quantile(xs []float64, q float64) float64 {
	var s []float64
	for _, x := range xs {
		if x >= 0 && !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}
