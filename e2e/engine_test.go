package e2e

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startEngine shares the test's X screen on a loopback port and returns its base URL.
func startEngine(t *testing.T, s engine.Settings) (*engine.Engine, string) {
	t.Helper()
	s.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Token = token
	e, err := engine.New(s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e, "http://" + s.Listen
}

// checkLeaks fails the test if it leaves goroutines behind. It is registered
// first, so it runs after every other cleanup (Xvfb, the painter, engines).
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, opt)
	})
}

func paintQuadrants(t *testing.T, x *testenv.X) {
	t.Helper()
	w, h := x.Width, x.Height
	for _, q := range []struct {
		r image.Rectangle
		c color.RGBA
	}{
		{image.Rect(0, 0, w/2, h/2), red}, {image.Rect(w/2, 0, w, h/2), green},
		{image.Rect(0, h/2, w/2, h), blue}, {image.Rect(w/2, h/2, w, h), white},
	} {
		if err := x.FillRect(q.r, q.c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamFromXvfb(t *testing.T) {
	checkLeaks(t)
	x := testenv.StartX(t, 800, 600)
	paintQuadrants(t, x)

	tests := []struct {
		name   string
		s      engine.Settings
		w, h   int
		points map[image.Point]color.RGBA
	}{
		{"whole screen", engine.Settings{FPS: 30, Quality: 80}, 800, 600,
			map[image.Point]color.RGBA{{200, 150}: red, {600, 150}: green, {200, 450}: blue, {600, 450}: white}},
		{"region", engine.Settings{FPS: 30, Quality: 80, Region: image.Rect(350, 250, 450, 330)}, 100, 80,
			map[image.Point]color.RGBA{{10, 10}: red, {90, 10}: green, {10, 70}: blue, {90, 70}: white}},
		{"downscaled", engine.Settings{FPS: 30, Quality: 80, MaxWidth: 400}, 400, 300,
			map[image.Point]color.RGBA{{100, 75}: red, {300, 75}: green, {100, 225}: blue, {300, 225}: white}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, base := startEngine(t, tc.s)
			m := openMJPEG(t, base+"/stream.mjpg?t="+token)
			defer m.Close()
			m.waitFor(t, 5*time.Second, "the quadrants", func(img image.Image) bool {
				if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
					t.Fatalf("frame is %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.w, tc.h)
				}
				for p, want := range tc.points {
					if got := img.At(p.X, p.Y); !near(got, want) {
						t.Fatalf("pixel %v = %v, want %v", p, got, want)
					}
				}
				return true
			})
		})
	}

	t.Run("follows changes", func(t *testing.T) {
		_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
		m := openMJPEG(t, base+"/stream.mjpg?t="+token)
		defer m.Close()
		m.waitFor(t, 5*time.Second, "the first frame", func(image.Image) bool { return true })
		for _, c := range []color.RGBA{green, blue, black} {
			if err := x.FillRect(image.Rect(0, 0, 400, 300), c); err != nil {
				t.Fatal(err)
			}
			m.waitFor(t, 3*time.Second, fmt.Sprintf("top-left %v", c), func(img image.Image) bool { return near(img.At(200, 150), c) })
		}
		paintQuadrants(t, x)
	})

	t.Run("no token, no media", func(t *testing.T) {
		_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
		for _, path := range []string{"/stream.mjpg", "/snapshot.jpg", "/api/status", "/", "/stream.mjpg?t=wrong" + token,
			"/audio.wav", "/ws/audio", "/audio.wav?t=wrong" + token, "/ws/audio?t=wrong" + token} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			// At most a refusal's worth: a stream served by mistake never ends.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != 401 || strings.Contains(string(body), "\xff\xd8") || strings.Contains(string(body), "RIFF") {
				t.Errorf("GET %s: %s, %d bytes; want 401 and no JPEG or WAV", path, resp.Status, len(body))
			}
			if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "audio/") || strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "multipart/") {
				t.Errorf("GET %s: refused with media Content-Type %q", path, ct)
			}
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
		resp, err := http.Get(base + "/snapshot.jpg?t=" + token)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		img, _, err := image.Decode(resp.Body)
		if err != nil || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("snapshot: %v, %s", err, resp.Header.Get("Content-Type"))
		}
		if !near(img.At(600, 450), white) {
			t.Fatalf("snapshot pixel = %v, want white", img.At(600, 450))
		}
	})

	t.Run("capture runs only while watched", func(t *testing.T) {
		e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
		st := e.Server().Status()
		if st.Capturing {
			t.Fatal("capturing before anybody watches")
		}
		m := openMJPEG(t, base+"/stream.mjpg?t="+token)
		m.waitFor(t, 5*time.Second, "a frame", func(image.Image) bool { return true })
		if !e.Server().Status().Capturing {
			t.Fatal("not capturing while watched")
		}
		m.Close()
		deadline := time.Now().Add(10 * time.Second)
		for e.Server().Status().Capturing {
			if time.Now().After(deadline) {
				t.Fatal("still capturing 10 s after the last viewer left")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestHeadlessQR runs the real binary headless and decodes the QR code it
// prints after the viewer URLs: a phone that scans it opens the first of them.
// Its stdout is a pipe, so the code comes as plain half blocks.
func TestHeadlessQR(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(appBinary(t), "--headless", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out []string
	var viewers []string // the URLs of the viewer lines
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("deskcast ended; printed:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if u, ok := strings.CutPrefix(l, "viewer: "); ok {
				viewers = append(viewers, u)
			}
		case <-deadline:
			t.Fatalf("no QR code that decodes 10 s after the start; printed:\n%s", strings.Join(out, "\n"))
		}
		if !strings.ContainsAny(out[len(out)-1], "▀▄█") {
			continue // the code has not started, or this line adds nothing to it
		}
		got, _, err := testenv.TermQR(strings.Join(out, "\n"))
		if err != nil {
			continue // not all of it yet
		}
		want := fmt.Sprintf("http://127.0.0.1:%d/?t=%s", port, token)
		if len(viewers) == 0 || viewers[0] != want {
			t.Fatalf("viewer lines %q, want the first %q", viewers, want)
		}
		if got != viewers[0] {
			t.Fatalf("the QR code says %q, the first viewer line %q", got, viewers[0])
		}
		t.Logf("%d lines printed; the QR code, after %d viewer lines, decodes to %s", len(out), len(viewers), got)
		return
	}
}

// TestHeadlessBinary runs the real binary: it prints the URLs, serves, and
// exits promptly on SIGINT and SIGTERM with a viewer connected.
func TestHeadlessBinary(t *testing.T) {
	testenv.StartX(t, 640, 480)
	bin := appBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			port := freePort(t)
			cmd := exec.Command(bin, "--headless", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token)
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line := make([]byte, 200)
			n, _ := stdout.Read(line)
			want := fmt.Sprintf("viewer: http://127.0.0.1:%d/?t=%s", port, token)
			if !strings.Contains(string(line[:n]), want) {
				t.Fatalf("stdout %q, want %q", line[:n], want)
			}
			m := openMJPEG(t, fmt.Sprintf("http://127.0.0.1:%d/stream.mjpg?t=%s", port, token))
			defer m.Close()
			if _, err := m.next(); err != nil {
				t.Fatal(err)
			}
			signalExit(t, cmd, sig, 2*time.Second)
		})
	}
}
