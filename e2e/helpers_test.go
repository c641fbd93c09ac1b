package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
)

const token = "e2etesttoken0123456789"

var (
	red   = color.RGBA{220, 30, 30, 255}
	green = color.RGBA{30, 200, 60, 255}
	blue  = color.RGBA{30, 60, 220, 255}
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
)

// near reports whether two colours are within JPEG's and scaling's error.
func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) bool { v := int(x>>8) - int(y>>8); return v > -28 && v < 28 }
	return d(r1, r2) && d(g1, g2) && d(b1, b2)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mjpeg reads an MJPEG stream part by part.
type mjpeg struct {
	body io.Closer
	mr   *multipart.Reader
}

func openMJPEG(t testing.TB, url string) *mjpeg {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		resp.Body.Close()
		t.Fatalf("GET %s: Content-Type %q", url, resp.Header.Get("Content-Type"))
	}
	return &mjpeg{body: resp.Body, mr: multipart.NewReader(resp.Body, params["boundary"])}
}

// next returns the next part's bytes.
func (m *mjpeg) next() ([]byte, error) {
	p, err := m.mr.NextPart()
	if err != nil {
		return nil, err
	}
	if ct := p.Header.Get("Content-Type"); ct != "image/jpeg" {
		return nil, fmt.Errorf("part Content-Type %q", ct)
	}
	return io.ReadAll(p)
}

// nextImage returns the next part decoded.
func (m *mjpeg) nextImage() (image.Image, error) {
	b, err := m.next()
	if err != nil {
		return nil, err
	}
	return jpeg.Decode(bytes.NewReader(b))
}

func (m *mjpeg) Close() { m.body.Close() }

// waitFor reads frames until check passes or the time runs out.
func (m *mjpeg) waitFor(t testing.TB, within time.Duration, what string, check func(image.Image) bool) image.Image {
	t.Helper()
	type res struct {
		img image.Image
		err error
	}
	deadline := time.After(within)
	for {
		ch := make(chan res, 1)
		go func() { img, err := m.nextImage(); ch <- res{img, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("waiting for %s: %v", what, r.err)
			}
			if check(r.img) {
				return r.img
			}
		case <-deadline:
			m.Close()
			t.Fatalf("no frame showed %s within %v", what, within)
		}
	}
}

// startHeadless runs the binary with --headless and args, waits for its first
// viewer line, and kills it when the test ends.
func startHeadless(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return runHeadless(t, exec.Command(appBinary(t), append([]string{"--headless"}, args...)...))
}

// startHeadlessIn is startHeadless inside network namespace ns (testenv.Net).
func startHeadlessIn(t testing.TB, ns string, args ...string) *exec.Cmd {
	t.Helper()
	return runHeadless(t, testenv.Command(ns, appBinary(t), append([]string{"--headless"}, args...)...))
}

// runHeadless starts cmd, a headless deskcast, waits for its first viewer
// line, and kills it when the test ends.
func runHeadless(t testing.TB, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("deskcast printed no viewer URL: %v", err)
	}
	return cmd
}

// decodeUntil decodes r's frames in order with dec, from the first keyframe
// on, until want accepts a picture; it reports whether one did within d.
func decodeUntil(r *whepclient.Client, dec *h264.Decoder, within time.Duration, want func(image.Image) bool) bool {
	deadline := time.After(within)
	for {
		select {
		case f := <-r.Frames:
			if img, err := dec.Decode(f.Data); err == nil && img != nil && want(img) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// signalExit sends sig to cmd and fails the test unless it exits cleanly
// within d.
func signalExit(t *testing.T, cmd *exec.Cmd, sig os.Signal, within time.Duration) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after %v: %v", sig, err)
		}
	case <-time.After(within):
		t.Fatalf("still running %v after %v", within, sig)
	}
}
