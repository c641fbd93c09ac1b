// Package testenv starts the real things tests run against: an X server
// (Xvfb), a D-Bus session bus, and browsers: headless Chromium (chromedp),
// Firefox ESR (WebDriver BiDi) and WebKitGTK (WebKitWebDriver). It is for
// tests only.
package testenv

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// X is a private Xvfb server and a connection that paints on its root window.
type X struct {
	Display string // e.g. ":93"
	Width   int
	Height  int
	conn    *xgb.Conn
	root    xproto.Window
	gc      xproto.Gcontext
	proc    *os.Process
	exited  chan struct{} // closed when the server has exited
	once    sync.Once
	t       testing.TB
}

// Pid is the X server's process id.
func (x *X) Pid() int { return x.proc.Pid }

// Need fails the test with the install command when a program is missing:
// make test installs everything, so a missing program is a broken setup.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found: run `make test` (it installs it) or scripts/deps.sh test", p)
		}
	}
}

// StartX starts Xvfb with one w×h screen on a free display, sets DISPLAY for
// the test and stops the server when the test ends.
func StartX(t testing.TB, w, h int) *X {
	t.Helper()
	return startX(t, "", w, h, true)
}

// StartXWithout starts Xvfb as StartX does, with the named X extensions
// (e.g. "DAMAGE") turned off: for the code paths of servers that lack them.
func StartXWithout(t testing.TB, w, h int, extensions ...string) *X {
	t.Helper()
	return startX(t, "", w, h, true, extensions...)
}

// StartXOn starts Xvfb with one w×h screen on display (e.g. ":93"), as
// StartX does: for a server that comes back where a killed one was.
func StartXOn(t testing.TB, display string, w, h int) *X {
	t.Helper()
	if !strings.HasPrefix(display, ":") {
		t.Fatalf("display %q: want \":N\"", display)
	}
	release(display)
	return startX(t, display, w, h, true)
}

// reserved holds the displays of killed servers (see Kill), by display.
var (
	reservedMu sync.Mutex
	reserved   = map[string]net.Listener{}
)

// reserve keeps a dead server's display number from other Xvfbs until
// StartXOn or the end of the test. With -displayfd Xvfb takes no lock file:
// it takes the lowest number whose abstract socket (@/tmp/.X11-unix/XN) it
// can bind. So the test binds that socket itself. Clients are not misled:
// xgb dials the socket file, which nobody listens on any more.
func reserve(t testing.TB, display string) {
	l, err := net.Listen("unix", "@/tmp/.X11-unix/X"+strings.TrimPrefix(display, ":"))
	if err != nil {
		t.Fatalf("reserving display %s after its server died (another server took it?): %v", display, err)
	}
	reservedMu.Lock()
	reserved[display] = l
	reservedMu.Unlock()
	t.Cleanup(func() { release(display) })
}

func release(display string) {
	reservedMu.Lock()
	defer reservedMu.Unlock()
	if l := reserved[display]; l != nil {
		l.Close()
		delete(reserved, display)
	}
}

// startX starts the server; setDisplay says whether to point the test's
// DISPLAY at it (a browser's own server must not: the app under test keeps
// the screen it shares); without lists extensions to turn off.
func startX(t testing.TB, display string, w, h int, setDisplay bool, without ...string) *X {
	t.Helper()
	Need(t, "Xvfb")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -noreset: kbinani/screenshot opens a connection per call, and a server
	// reset when the last client leaves would break the next one.
	args := []string{"-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h),
		"-noreset", "-nolisten", "tcp", "+extension", "MIT-SHM"}
	for _, e := range without {
		args = append(args, "-extension", e)
	}
	if display != "" {
		// With a display given, Xvfb still writes its number to the fd once ready.
		args = append([]string{display}, args...)
	}
	cmd := exec.Command("Xvfb", args...)
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Stderr = &prefixWriter{t: t, prefix: "Xvfb: "}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Xvfb: %v", err)
	}
	wr.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	x := &X{Width: w, Height: h, proc: cmd.Process, exited: exited, t: t}
	t.Cleanup(x.stop)
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(line)
		r.Close()
	}()
	var disp string
	select {
	case n := <-num:
		if n == "" {
			t.Fatal("Xvfb exited before it was ready")
		}
		disp = ":" + n
	case <-time.After(10 * time.Second):
		t.Fatal("Xvfb did not start within 10 s")
	}
	if display != "" && disp != display {
		t.Fatalf("Xvfb started on %s, want %s", disp, display)
	}
	if setDisplay {
		t.Setenv("DISPLAY", disp)
	}
	x.Display = disp
	x.conn, err = xgb.NewConnDisplay(disp)
	if err != nil {
		t.Fatalf("connecting to Xvfb: %v", err)
	}
	x.root = xproto.Setup(x.conn).DefaultScreen(x.conn).Root
	x.gc, _ = xproto.NewGcontextId(x.conn)
	if err := xproto.CreateGCChecked(x.conn, x.gc, xproto.Drawable(x.root), 0, nil).Check(); err != nil {
		t.Fatalf("creating GC: %v", err)
	}
	if err := x.hideCursor(); err != nil {
		t.Fatalf("hiding the cursor: %v", err)
	}
	return x
}

// stop closes the painting connection and stops the server; a second call does nothing.
func (x *X) stop() {
	x.once.Do(func() {
		if x.conn != nil {
			x.conn.Close()
		}
		_ = x.proc.Kill()
		<-x.exited
	})
}

// Kill ends the server at once (SIGKILL), as a crash would, and returns when
// it has exited: every client's connection breaks. The display number stays
// reserved for StartXOn(t, x.Display, …), which starts a new server there.
func (x *X) Kill() {
	x.t.Helper()
	x.stop()
	reserve(x.t, x.Display)
}

// Fill paints the whole screen one colour.
func (x *X) Fill(c color.RGBA) error {
	return x.FillRect(image.Rect(0, 0, x.Width, x.Height), c)
}

// FillRect paints r one colour and returns once the server has drawn it.
func (x *X) FillRect(r image.Rectangle, c color.RGBA) error {
	pixel := uint32(c.R)<<16 | uint32(c.G)<<8 | uint32(c.B)
	xproto.ChangeGC(x.conn, x.gc, xproto.GcForeground, []uint32{pixel})
	xproto.PolyFillRectangle(x.conn, xproto.Drawable(x.root), x.gc, []xproto.Rectangle{{
		X: int16(r.Min.X), Y: int16(r.Min.Y), Width: uint16(r.Dx()), Height: uint16(r.Dy()),
	}})
	return x.Sync()
}

// Put draws img with its top-left corner at (0,0).
func (x *X) Put(img *image.RGBA) error { return x.putImage(xproto.Drawable(x.root), img) }

// putImage draws img at (0,0) of d (the root window or a pixmap of its
// depth) in requests of about 200 KB, well under the core protocol's
// request size, and waits until the server has drawn it.
func (x *X) putImage(d xproto.Drawable, img *image.RGBA) error {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	rows := max(1, 200_000/(w*4))
	buf := make([]byte, w*rows*4)
	for y0 := 0; y0 < h; y0 += rows {
		n := min(rows, h-y0)
		for y := range n {
			src := img.Pix[(y0+y)*img.Stride:]
			dst := buf[y*w*4:]
			for i := 0; i < w*4; i += 4 {
				dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i+2], src[i+1], src[i], 0
			}
		}
		xproto.PutImage(x.conn, xproto.ImageFormatZPixmap, d, x.gc,
			uint16(w), uint16(n), 0, int16(y0), 0, 24, buf[:w*n*4])
	}
	return x.Sync()
}

// Sync waits until the server has handled every request sent so far.
func (x *X) Sync() error {
	_, err := xproto.GetInputFocus(x.conn).Reply()
	return err
}

type prefixWriter struct {
	t      testing.TB
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" && !strings.Contains(l, "Could not resolve keysym") {
			p.t.Log(p.prefix + l)
		}
	}
	return len(b), nil
}

// Screenshot returns what the X screen shows.
func (x *X) Screenshot() (*image.RGBA, error) {
	img := image.NewRGBA(image.Rect(0, 0, x.Width, x.Height))
	rows := max(1, 1_000_000/(x.Width*4))
	for y0 := 0; y0 < x.Height; y0 += rows {
		n := min(rows, x.Height-y0)
		r, err := xproto.GetImage(x.conn, xproto.ImageFormatZPixmap, xproto.Drawable(x.root),
			0, int16(y0), uint16(x.Width), uint16(n), 0xffffffff).Reply()
		if err != nil {
			return nil, err
		}
		for i := 0; i+3 < len(r.Data) && i/4 < x.Width*n; i += 4 {
			p := (y0*x.Width + i/4) * 4
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = r.Data[i+2], r.Data[i+1], r.Data[i], 255
		}
	}
	return img, nil
}
