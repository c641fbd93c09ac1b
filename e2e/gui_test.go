package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// app is the desktop app running in a real window.
type app struct {
	cmd  *exec.Cmd
	port int
	done chan error
}

var (
	binOnce sync.Once
	binDir  string // holds binPath; TestMain removes it
	binPath string
	binErr  error
)

// TestMain removes the binary appBinary built, once every test and benchmark is done with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintln(os.Stderr, "removing the test binary:", err)
		}
	}
	os.Exit(code)
}

// appBinary builds deskcast once for the package's tests.
func appBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deskcast-e2e")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "deskcast")
		if out, err := exec.Command("go", "build", "-o", binPath, "..").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// testLog is an io.Writer that passes what a process writes to t.Log, a line
// at a time, until stop: t.Log panics once the test has ended, and the
// process's output is copied by a goroutine of os/exec's.
type testLog struct {
	t       *testing.T
	prefix  string
	mu      sync.Mutex
	stopped bool
	line    []byte // an unfinished line
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return len(p), nil
	}
	l.line = append(l.line, p...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.prefix + string(l.line[:i]))
		l.line = l.line[i+1:]
	}
	return len(p), nil
}

// stop logs what is left of an unfinished line and drops all later output.
func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped && len(l.line) > 0 {
		l.t.Log(l.prefix + string(l.line))
	}
	l.stopped, l.line = true, nil
}

// startApp runs the GUI on the test's X server and D-Bus, with a home of its own.
func startApp(t *testing.T, args ...string) *app {
	t.Helper()
	a := &app{port: freePort(t), done: make(chan error, 1)}
	home := t.TempDir()
	a.cmd = exec.Command(appBinary(t), append([]string{"--listen", fmt.Sprintf(":%d", a.port), "--token", token}, args...)...)
	a.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LANG=en_US.UTF-8")
	// Cleanups run last-registered first: this one, registered before the one
	// that kills the app, runs after it, when Wait has returned and nothing
	// more can be copied to the log.
	stderr := &testLog{t: t, prefix: "app: "}
	t.Cleanup(stderr.stop)
	a.cmd.Stderr = stderr
	// Wait returns at most this long after the app exits, even if a child of the app holds stderr open.
	a.cmd.WaitDelay = 5 * time.Second
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.done
	})
	return a
}

// exit waits for the app to end and says how.
func (a *app) exit(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("app exit: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("app still running %v later", within)
	}
}

// readQR decodes the QR code on screen: from the window's area first, where
// it dominates the picture, then from the whole screen.
func readQR(img image.Image) (string, error) {
	if rgba, ok := img.(*image.RGBA); ok {
		if text, err := decodeQR(cropToContent(rgba)); err == nil {
			return text, nil
		}
	}
	return decodeQR(img)
}

func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// saveScreenshot keeps a picture for the README when DESKCAST_SCREENSHOTS names a folder.
func saveScreenshot(t *testing.T, name string, img image.Image) {
	dir := os.Getenv("DESKCAST_SCREENSHOTS")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	_ = png.Encode(f, img)
}

// cropToContent trims the black screen around the window.
func cropToContent(img *image.RGBA) image.Image {
	r := image.Rectangle{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c := img.RGBAAt(x, y); c.R|c.G|c.B > 8 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return img.SubImage(r)
}

func TestDesktopWindow(t *testing.T) {
	x := testenv.StartX(t, 1024, 900)
	testenv.SessionBus(t)
	a := startApp(t, "--start")

	var text string
	var shot *image.RGBA
	deadline := time.Now().Add(30 * time.Second)
	for {
		img, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if text, err = readQR(img); err == nil {
			shot = img
			break
		}
		if time.Now().After(deadline) {
			saveScreenshot(t, "window-failed.png", img)
			t.Fatalf("no QR code on screen within 30 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	saveScreenshot(t, "window.png", cropToContent(shot))
	u, err := url.Parse(text)
	if err != nil || u.Scheme != "http" || u.Port() != fmt.Sprint(a.port) || u.Query().Get("t") != token {
		t.Fatalf("QR code holds %q; want http://HOST:%d/?t=%s", text, a.port, token)
	}
	t.Logf("QR code: %s", text)
	// Through 127.0.0.1 with the same port and token, as the issue asks.
	u.Host = fmt.Sprintf("127.0.0.1:%d", a.port)
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "stream.mjpg") {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	m := openMJPEG(t, fmt.Sprintf("http://127.0.0.1:%d/stream.mjpg?t=%s", a.port, token))
	img, err := m.nextImage()
	m.Close()
	if err != nil || img.Bounds().Dx() != 1024 || img.Bounds().Dy() != 900 {
		t.Fatalf("stream frame: %v, %v", err, img)
	}
	if got, err := readQR(img); err != nil || got != text {
		t.Fatalf("the streamed screen should show the same QR code: %q, %v", got, err)
	}

	start := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	a.exit(t, 2*time.Second)
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestDesktopWindowWithoutDBus: no session bus (minimal desktops, CI) means
// no tray; the app works from its window and quits cleanly (fyne-io/fyne#6403).
func TestDesktopWindowWithoutDBus(t *testing.T) {
	x := testenv.StartX(t, 800, 800)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	a := startApp(t, "--start")
	deadline := time.Now().Add(30 * time.Second)
	for {
		img, err := x.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readQR(img); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no window with a QR code within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	a.exit(t, 2*time.Second)
}

// watcher is a minimal StatusNotifierWatcher, the part of a desktop's tray
// host that tray icons register with.
type watcher struct{ items chan string }

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.items <- string(sender)
	return nil
}

// menuNode is one entry of a dbusmenu layout.
type menuNode struct {
	ID       int32
	Label    string
	Children []menuNode
}

func toNode(v any) menuNode {
	s, ok := v.([]any)
	if !ok || len(s) != 3 {
		return menuNode{}
	}
	n := menuNode{ID: s[0].(int32)}
	if props, ok := s[1].(map[string]dbus.Variant); ok {
		if l, ok := props["label"]; ok {
			n.Label, _ = l.Value().(string)
		}
	}
	if kids, ok := s[2].([]dbus.Variant); ok {
		for _, k := range kids {
			n.Children = append(n.Children, toNode(k.Value()))
		}
	}
	return n
}

func (n menuNode) find(label string) (menuNode, bool) {
	if n.Label == label {
		return n, true
	}
	for _, c := range n.Children {
		if f, ok := c.find(label); ok {
			return f, true
		}
	}
	return menuNode{}, false
}

func TestTrayMenuOverDBus(t *testing.T) {
	testenv.StartX(t, 800, 600)
	testenv.SessionBus(t)
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := &watcher{items: make(chan string, 4)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("taking the watcher's name: %v %v", r, err)
	}

	a := startApp(t, "--start")
	var item string
	select {
	case item = <-w.items:
	case <-time.After(30 * time.Second):
		t.Fatal("the app registered no tray icon within 30 s")
	}
	menu := conn.Object(item, "/StatusNotifierItem/menu")
	layout := func() menuNode {
		t.Helper()
		var root menuNode
		// The first GetLayout answers one level only (a systray quirk); ask until the submenus are there.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var rev uint32
			var raw []any
			call := menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
			if call.Err != nil {
				t.Fatalf("GetLayout: %v", call.Err)
			}
			if err := call.Store(&rev, &raw); err != nil {
				t.Fatalf("GetLayout reply: %v", err)
			}
			root = toNode(raw)
			if m, ok := root.find("Monitor"); ok && len(m.Children) > 0 {
				return root
			}
			if time.Now().After(deadline) {
				t.Fatalf("menu never showed its submenus: %+v", root)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	click := func(label string) {
		t.Helper()
		n, ok := layout().find(label)
		if !ok {
			t.Fatalf("no %q in the tray menu", label)
		}
		if call := menu.Call("com.canonical.dbusmenu.Event", 0, n.ID, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
			t.Fatalf("Event %q: %v", label, call.Err)
		}
	}

	root := layout()
	var labels []string
	for _, c := range root.Children {
		labels = append(labels, c.Label)
	}
	for _, want := range []string{"Stop sharing", "Pause", "Monitor", "Audio", "Quality", "Show window", "Copy link", "Quit"} {
		if _, ok := root.find(want); !ok {
			t.Fatalf("tray menu %q lacks %q", labels, want)
		}
	}
	if mon, _ := root.find("Monitor"); mon.Children[0].Label != "1: 800×600 (primary)" {
		t.Fatalf("monitor submenu %+v", mon.Children)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", a.port)
	click("Pause")
	waitStatus(t, base, "paused after the tray's Pause", func(st web.Status) bool { return st.State == "paused" })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := layout().find("Resume"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tray menu never offered Resume")
		}
		time.Sleep(200 * time.Millisecond)
	}

	start := time.Now()
	click("Quit")
	a.exit(t, 2*time.Second)
	t.Logf("exited %v after Quit", time.Since(start).Round(time.Millisecond))
}
