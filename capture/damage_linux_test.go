package capture

import (
	"context"
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// notices says what a countingGrabber does with its grabber's change notices.
type notices int

const (
	heard  notices = iota // passed on
	missed                // a channel that never receives: as if each were missed
	ticked                // none: Run polls at the frame rate, as without XDamage
)

// countingGrabber counts the grabs of the platform grabber it wraps and
// passes its change notices on, or not.
type countingGrabber struct {
	grabber
	notices notices
	grabs   atomic.Int64
}

func (c *countingGrabber) Grab() (*media.Picture, error) {
	c.grabs.Add(1)
	return c.grabber.Grab()
}

func (c *countingGrabber) Changes() <-chan time.Time {
	switch c.notices {
	case missed:
		return make(chan time.Time)
	case ticked:
		return nil
	}
	if n, ok := c.grabber.(changeNotifier); ok {
		return n.Changes()
	}
	return nil
}

// emitted is one picture Run emitted: when, its size and its colour at a point.
type emitted struct {
	at   time.Time
	c    color.RGBA
	size image.Point
}

// screenRun is a Screen running on the test's X server.
type screenRun struct {
	g      *countingGrabber
	emits  chan emitted
	cancel context.CancelFunc
	errc   chan error
}

// runScreen runs a Screen for cfg with the given safety poll, on the
// platform grabber wrapped in a countingGrabber, and samples each emitted
// picture at probe (in picture coordinates). Unless n is ticked, it fails
// the test if the grabber is not told of changes (by XDamage, or the
// portal's stream). The run ends with the test.
func runScreen(t testing.TB, cfg ScreenConfig, poll time.Duration, n notices, probe image.Point) *screenRun {
	t.Helper()
	s, err := NewScreen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.poll = poll
	r := &screenRun{emits: make(chan emitted, 1024), errc: make(chan error, 1)}
	opened := make(chan struct{})
	s.open = func(ctx context.Context, cfg ScreenConfig) (grabber, error) {
		defer close(opened)
		g, err := newPlatformGrabber(ctx, cfg)
		if err != nil {
			return nil, err
		}
		r.g = &countingGrabber{grabber: g, notices: n}
		return r.g, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.errc <- s.Run(ctx, func(p *media.Picture) {
			o := p.Pix[probe.Y*p.Stride+probe.X*4:]
			e := emitted{time.Now(), color.RGBA{o[2], o[1], o[0], 255}, image.Pt(p.Width, p.Height)}
			if p.Format == media.RGBA {
				e.c = color.RGBA{o[0], o[1], o[2], 255}
			}
			p.Release()
			select {
			case r.emits <- e:
			default:
				t.Error("more than 1024 pictures emitted")
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-opened
	if r.g == nil {
		t.Fatalf("Run: %v", <-r.errc)
	}
	if cn, ok := r.g.grabber.(changeNotifier); n != ticked && (!ok || cn.Changes() == nil) {
		t.Fatalf("grabber %T is not told of changes: want XShm with XDamage on Xvfb, or the portal", r.g.grabber)
	}
	return r
}

// next returns the next picture emitted within d, or fails the test.
func (r *screenRun) next(t testing.TB, d time.Duration) emitted {
	t.Helper()
	select {
	case e := <-r.emits:
		return e
	case err := <-r.errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(d):
		t.Fatalf("no picture within %v", d)
	}
	return emitted{}
}

// until returns the first picture emitted within d whose probe shows c.
func (r *screenRun) until(t testing.TB, d time.Duration, c color.RGBA) emitted {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if e := r.next(t, time.Until(deadline)); near(e.c, c) {
			return e
		}
	}
}

// quiet fails the test if a picture is emitted within d.
func (r *screenRun) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.emits:
		t.Fatalf("picture emitted on a still screen, showing %v", e.c)
	case err := <-r.errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(d):
	}
}

func paint(t testing.TB, x *testenv.X, r image.Rectangle, c color.RGBA) {
	t.Helper()
	if err := x.FillRect(r, c); err != nil {
		t.Fatal(err)
	}
}

// TestScreenDamageLatency checks that a change is grabbed as soon as it is
// drawn, not on the next tick: at 5 fps a ticker would take 100 ms on
// average from change to picture, and up to 200.
func TestScreenDamageLatency(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	paint(t, x, image.Rect(0, 0, 640, 480), white)
	const fps = 5
	interval := time.Second / fps
	r := runScreen(t, ScreenConfig{FPS: fps}, safetyPoll, heard, image.Pt(50, 50))
	r.until(t, 5*time.Second, white)

	var lat []time.Duration
	colours := []color.RGBA{red, green, blue}
	for i := range 10 {
		// At least a frame interval after the last grab, so that the cap
		// does not hold the grab back, and at a random phase.
		time.Sleep(interval + rand.N(interval))
		c := colours[i%len(colours)]
		t0 := time.Now()
		paint(t, x, image.Rect(0, 0, 100, 100), c)
		e := r.until(t, 5*time.Second, c)
		lat = append(lat, e.at.Sub(t0))
	}
	slices.Sort(lat)
	median := lat[len(lat)/2]
	t.Logf("change to picture at %d fps, sorted: %v; median %v", fps, lat, median)
	if median > 50*time.Millisecond {
		t.Fatalf("median change to picture %v, want under 50 ms (a ticker averages %v)", median, interval/2)
	}
}

// TestScreenDamageStill checks that a still screen is not grabbed at all but
// for the safety poll, and that the poll catches a change whose notice never
// came.
func TestScreenDamageStill(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	paint(t, x, image.Rect(0, 0, 320, 240), blue)

	t.Run("no grabs", func(t *testing.T) {
		r := runScreen(t, ScreenConfig{FPS: 30}, time.Hour, heard, image.Pt(10, 10))
		r.until(t, 5*time.Second, blue)
		before := r.g.grabs.Load()
		r.quiet(t, 2*time.Second)
		if n := r.g.grabs.Load() - before; n != 0 {
			t.Fatalf("%d grabs of a still screen in 2 s at 30 fps, want none", n)
		}
	})
	t.Run("safety poll", func(t *testing.T) {
		r := runScreen(t, ScreenConfig{FPS: 30}, safetyPoll, heard, image.Pt(10, 10))
		r.until(t, 5*time.Second, blue)
		before := r.g.grabs.Load()
		r.quiet(t, 2*time.Second)
		// One a second; a loaded machine may fit a third in.
		if n := r.g.grabs.Load() - before; n < 1 || n > 3 {
			t.Fatalf("%d grabs of a still screen in 2 s with a 1 s safety poll, want 1 to 3", n)
		}
	})
	t.Run("missed notice", func(t *testing.T) {
		r := runScreen(t, ScreenConfig{FPS: 30}, 300*time.Millisecond, missed, image.Pt(10, 10))
		r.until(t, 5*time.Second, blue)
		t0 := time.Now()
		paint(t, x, image.Rect(0, 0, 320, 240), red)
		e := r.until(t, 5*time.Second, red)
		if d := e.at.Sub(t0); d > 300*time.Millisecond+250*time.Millisecond {
			t.Fatalf("a change nobody was told of took %v to show, want about the 300 ms poll", d)
		}
	})
	// Damage that never reports (a GL compositor): after two changes found
	// by the poll alone, Run grabs at the frame rate, so the next change
	// shows within a frame or two, not a poll.
	t.Run("damage that never reports", func(t *testing.T) {
		paint(t, x, image.Rect(0, 0, 320, 240), red)
		r := runScreen(t, ScreenConfig{FPS: 30}, 2*time.Second, missed, image.Pt(10, 10))
		r.until(t, 5*time.Second, red)
		for _, c := range []color.RGBA{blue, red} {
			paint(t, x, image.Rect(0, 0, 320, 240), c)
			r.until(t, 5*time.Second, c)
		}
		t0 := time.Now()
		paint(t, x, image.Rect(0, 0, 320, 240), blue)
		if d := r.until(t, 5*time.Second, blue).at.Sub(t0); d > 500*time.Millisecond {
			t.Fatalf("after two unreported changes a change took %v to show, want about a frame (33 ms)", d)
		}
	})
}

// TestScreenDamageFrameRate checks that under continuous drawing, Run still
// grabs and emits at most at the frame rate, and keeps up with it.
func TestScreenDamageFrameRate(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	paint(t, x, image.Rect(0, 0, 320, 240), white)
	const fps = 10
	r := runScreen(t, ScreenConfig{FPS: fps}, safetyPoll, heard, image.Pt(10, 10))
	r.until(t, 5*time.Second, white)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := color.RGBA{uint8(i), uint8(i * 7), uint8(i * 13), 255}
			if err := x.FillRect(image.Rect(0, 0, 64, 64), c); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // past the first picture, which is not held back
	for len(r.emits) > 0 {
		<-r.emits
	}
	grabs0 := r.g.grabs.Load()
	time.Sleep(time.Second)
	emits, grabs := len(r.emits), r.g.grabs.Load()-grabs0
	close(stop)
	wg.Wait()
	t.Logf("continuous drawing at %d fps: %d pictures, %d grabs in 1 s", fps, emits, grabs)
	if grabs > fps+1 || emits > fps+1 {
		t.Fatalf("%d grabs and %d pictures in 1 s at %d fps, want at most %d", grabs, emits, fps, fps+1)
	}
	if emits < fps/2 {
		t.Fatalf("%d pictures in 1 s of continuous drawing at %d fps, want at least %d", emits, fps, fps/2)
	}
}

// TestScreenDamageRegion checks that drawing outside the shared region
// starts no grab, and drawing that overlaps it does.
func TestScreenDamageRegion(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	paint(t, x, image.Rect(0, 0, 640, 480), white)
	region := image.Rect(100, 100, 300, 300)
	r := runScreen(t, ScreenConfig{FPS: 30, Region: region}, time.Hour, heard, image.Pt(190, 190))
	r.until(t, 5*time.Second, white)

	before := r.g.grabs.Load()
	colours := []color.RGBA{red, green, blue}
	for i := range 20 {
		c := colours[i%len(colours)]
		paint(t, x, image.Rect(300, 0, 640, 480), c) // touches the region's right edge, outside it
		paint(t, x, image.Rect(0, 0, 100, 100), c)
		time.Sleep(25 * time.Millisecond)
	}
	r.quiet(t, 500*time.Millisecond)
	if n := r.g.grabs.Load() - before; n != 0 {
		t.Fatalf("%d grabs for drawing outside the region, want none", n)
	}

	// Overlapping the region's bottom-right corner by a few pixels.
	paint(t, x, image.Rect(280, 280, 400, 400), green)
	r.until(t, 2*time.Second, green)
}

// TestScreenWithoutDamage checks that on an X server without the DAMAGE
// extension the XShm grabber still works and Run polls at the frame rate.
func TestScreenWithoutDamage(t *testing.T) {
	x := testenv.StartXWithout(t, 320, 240, "DAMAGE")
	paint(t, x, image.Rect(0, 0, 320, 240), blue)
	r := runScreen(t, ScreenConfig{FPS: 10}, safetyPoll, ticked, image.Pt(10, 10))
	xs, ok := r.g.grabber.(*xshmGrabber)
	if !ok || xs.Changes() != nil {
		t.Fatalf("grabber %T, told of changes %v: want XShm, polling", r.g.grabber, ok && xs.Changes() != nil)
	}
	r.until(t, 5*time.Second, blue)
	before := r.g.grabs.Load()
	time.Sleep(time.Second)
	// 10 a second; a loaded machine may lose a few ticks.
	if n := r.g.grabs.Load() - before; n < 5 || n > 11 {
		t.Fatalf("%d grabs in 1 s at 10 fps without XDamage, want about 10", n)
	}
	paint(t, x, image.Rect(0, 0, 320, 240), red)
	r.until(t, 2*time.Second, red)
}
