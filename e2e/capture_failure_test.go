package e2e

import (
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// waitState polls /api/status until ok says yes, and returns it with the time it took.
func waitState(t *testing.T, base string, within time.Duration, what string, ok func(web.Status) bool) (web.Status, time.Duration) {
	t.Helper()
	start := time.Now()
	var st web.Status
	for {
		if st = status(t, base); ok(st) {
			return st, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("status not %s within %v; last %+v", what, within, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// frameReader reads an MJPEG stream on its own goroutine, so the test can
// wait for a frame with a deadline and tell at any time whether the stream
// has ended.
type frameReader struct {
	m      *mjpeg
	frames chan image.Image
	ended  chan error // receives the error that ended the stream
	stop   chan struct{}
	done   chan struct{}
}

func readFrames(t *testing.T, m *mjpeg) *frameReader {
	fr := &frameReader{m: m, frames: make(chan image.Image), ended: make(chan error, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(fr.done)
		for {
			img, err := m.nextImage()
			if err != nil {
				fr.ended <- err
				return
			}
			select {
			case fr.frames <- img:
			case <-fr.stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(fr.stop)
		m.Close()
		<-fr.done
	})
	return fr
}

// open fails the test if the stream has ended.
func (fr *frameReader) open(t *testing.T, when string) {
	t.Helper()
	select {
	case err := <-fr.ended:
		t.Fatalf("%s: the MJPEG stream ended: %v", when, err)
	default:
	}
}

// waitFor reads frames until check passes, the stream ends or the time runs out.
func (fr *frameReader) waitFor(t *testing.T, within time.Duration, what string, check func(image.Image) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case img := <-fr.frames:
			if check(img) {
				return
			}
		case err := <-fr.ended:
			t.Fatalf("waiting for %s: the MJPEG stream ended: %v", what, err)
		case <-deadline:
			t.Fatalf("no frame showed %s within %v", what, within)
		}
	}
}

// all reports whether img is c at its centre and near each corner.
func all(img image.Image, c color.RGBA) bool {
	b := img.Bounds()
	for _, p := range []image.Point{
		{b.Dx() / 2, b.Dy() / 2}, {10, 10}, {b.Dx() - 10, 10}, {10, b.Dy() - 10}, {b.Dx() - 10, b.Dy() - 10},
	} {
		if !near(img.At(b.Min.X+p.X, b.Min.Y+p.Y), c) {
			return false
		}
	}
	return true
}

// TestCaptureFailure kills the X server under a watched share: the status
// turns to "error" with the reason, the viewer's stream stays open (the
// page shows "Screen capture problem" over it and keeps polling), nothing
// crashes; a new X server on the same display brings the share back to
// "sharing" and its picture reaches the same stream, with no goroutine left
// behind.
func TestCaptureFailure(t *testing.T) {
	checkLeaks(t)
	const w, h = 640, 480
	x := testenv.StartX(t, w, h)
	if err := x.Fill(red); err != nil {
		t.Fatal(err)
	}
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80})
	fr := readFrames(t, openMJPEG(t, base+"/stream.mjpg?t="+token))
	fr.waitFor(t, 5*time.Second, "red", func(img image.Image) bool {
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Fatalf("frame is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
		}
		return all(img, red)
	})
	if st := status(t, base); st.State != "sharing" || st.Error != "" || st.Viewers != 1 {
		t.Fatalf("while capturing: status %+v, want sharing, no error, 1 viewer", st)
	}

	display := x.Display
	x.Kill()
	st, toError := waitState(t, base, 10*time.Second, `"error" with a reason`, func(st web.Status) bool {
		return st.State == "error" && st.Error != ""
	})
	t.Logf("X server killed: status %q, error %q after %v", st.State, st.Error, toError.Round(time.Millisecond))
	if st.Viewers != 1 {
		t.Errorf("in the error state: %d viewers, want the 1 still connected", st.Viewers)
	}
	// The retries go on without the X server (the backoff reaches its 5 s
	// ceiling after about 4 s): the state stays "error" and the stream open.
	hold := time.Now().Add(6 * time.Second)
	for time.Now().Before(hold) {
		if st = status(t, base); st.State != "error" || st.Error == "" {
			t.Fatalf("without an X server: status %+v, want error", st)
		}
		fr.open(t, "without an X server")
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("6 s later: still %q, error %q, the stream open", st.State, st.Error)

	x2 := testenv.StartXOn(t, display, w, h)
	if err := x2.Fill(blue); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	_, toSharing := waitState(t, base, 15*time.Second, `"sharing"`, func(st web.Status) bool {
		return st.State == "sharing" && st.Error == ""
	})
	fr.waitFor(t, 15*time.Second, "blue from the new X server", func(img image.Image) bool { return all(img, blue) })
	t.Logf("X server back on %s: sharing after %v, blue frame on the same stream after %v", display,
		toSharing.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))

	// A new viewer sees the new server too.
	m2 := openMJPEG(t, base+"/stream.mjpg?t="+token)
	defer m2.Close()
	m2.waitFor(t, 5*time.Second, "blue for a new viewer", func(img image.Image) bool { return all(img, blue) })
}
