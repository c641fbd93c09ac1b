package app

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// watch opens the MJPEG stream and decodes its frames on a goroutine until
// the test ends; a stream that ends sends its error on ended.
func watch(t *testing.T, url string) (frames <-chan image.Image, ended <-chan error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || err != nil || params["boundary"] == "" {
		resp.Body.Close()
		t.Fatalf("GET %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	fc, ec := make(chan image.Image), make(chan error, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			var b []byte
			if err == nil {
				b, err = io.ReadAll(p)
			}
			var img image.Image
			if err == nil {
				img, err = jpeg.Decode(bytes.NewReader(b))
			}
			if err != nil {
				ec <- err
				return
			}
			select {
			case fc <- img:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		resp.Body.Close()
		<-done
		http.DefaultClient.CloseIdleConnections()
	})
	return fc, ec
}

// waitFrame reads frames until one is c in its centre.
func waitFrame(t *testing.T, frames <-chan image.Image, ended <-chan error, within time.Duration, c color.RGBA) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case img := <-frames:
			b := img.Bounds()
			r, g, bl, _ := img.At(b.Dx()/2, b.Dy()/2).RGBA()
			near := func(x uint32, y uint8) bool { d := int(x>>8) - int(y); return d > -28 && d < 28 }
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				return
			}
		case err := <-ended:
			t.Fatalf("waiting for a %v frame: the stream ended: %v", c, err)
		case <-deadline:
			t.Fatalf("no %v frame within %v", c, within)
		}
	}
}

// waitStatusLine refreshes the window, as its one-second tick does, until
// its status line passes ok, and returns the line and the time it took.
func waitStatusLine(t *testing.T, a *App, within time.Duration, what string, ok func(string) bool) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		a.refresh()
		if s := a.win.status.Text; ok(s) {
			return s, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("status line not %s within %v: %q", what, within, a.win.status.Text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCaptureFailureInWindow runs the window over the real engine on a
// private X server, kills the server while a viewer watches, and reads the
// window's status line: "Screen capture problem: …" while the server is
// gone, "Sharing …" again (and the new server's picture on the viewer's
// still-open stream) once a new one is up on the same display.
func TestCaptureFailureInWindow(t *testing.T) {
	red, blue := color.RGBA{220, 30, 30, 255}, color.RGBA{30, 60, 220, 255}
	x := testenv.StartX(t, 320, 240) // sets DISPLAY, which the engine's capture connects to
	if err := x.Fill(red); err != nil {
		t.Fatal(err)
	}
	a, eng, _ := newRealApp(t)
	a.Start()
	srv := eng.Server()
	if srv == nil {
		t.Fatalf("not sharing after Start: %q", a.win.status.Text)
	}
	frames, ended := watch(t, "http://127.0.0.1:"+itoa(srv.Port())+"/stream.mjpg?t="+srv.Token())
	waitFrame(t, frames, ended, 5*time.Second, red)
	waitStatusLine(t, a, 5*time.Second, "sharing", func(s string) bool { return strings.HasPrefix(s, "Sharing · 1 viewer") })

	display := x.Display
	x.Kill()
	line, took := waitStatusLine(t, a, 10*time.Second, "a capture problem", func(s string) bool {
		return strings.HasPrefix(s, "Screen capture problem: ") && len(s) > len("Screen capture problem: ")
	})
	t.Logf("X server killed: %q after %v", line, took.Round(time.Millisecond))
	select {
	case err := <-ended:
		t.Fatalf("the viewer's stream ended when the X server went away: %v", err)
	default:
	}

	x2 := testenv.StartXOn(t, display, 320, 240)
	if err := x2.Fill(blue); err != nil {
		t.Fatal(err)
	}
	line, took = waitStatusLine(t, a, 15*time.Second, "sharing again", func(s string) bool { return strings.HasPrefix(s, "Sharing · 1 viewer") })
	t.Logf("X server back on %s: %q after %v", display, line, took.Round(time.Millisecond))
	waitFrame(t, frames, ended, 15*time.Second, blue)
}
