package e2e

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/web"
)

// lines is a headless deskcast's stdout, kept line by line.
type lines struct {
	mu  sync.Mutex
	all []string
}

// startHeadlessLines runs the binary with --headless, its environment plus
// env, and collects its stdout; it is killed when the test ends.
func startHeadlessLines(t *testing.T, env []string, args ...string) (*exec.Cmd, *lines) {
	t.Helper()
	cmd := exec.Command(appBinary(t), append([]string{"--headless"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := &lines{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
		}
	}()
	return cmd, l
}

// wait waits until a line starts with prefix and returns it.
func (l *lines) wait(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		for _, s := range l.all {
			if strings.HasPrefix(s, prefix) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no line %q within %v; stdout:\n%s", prefix, within, strings.Join(l.all, "\n"))
	return ""
}

// TestWaylandShare shares a real GNOME Wayland session (headless mutter)
// as a user would on Wayland: the binary, with the desktop's permission
// stored (DESKCAST_PORTAL_RESTORE_TOKEN, as the app stores it), captures
// through the ScreenCast portal and PipeWire; an MJPEG viewer and a WebRTC
// viewer see a GTK window's colour and its change; when the compositor dies
// the share says so in its status and keeps serving.
func TestWaylandShare(t *testing.T) {
	wl := testenv.GnomeWayland(t, 1920, 1080)
	win := wl.Window(red)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd, out := startHeadlessLines(t, []string{"DESKCAST_PORTAL_RESTORE_TOKEN=" + wl.SeedScreencast()},
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token)
	out.wait(t, "screen: through the desktop's screen-sharing portal", 10*time.Second)

	m := openMJPEG(t, base+"/stream.mjpg?t="+token)
	defer m.Close()
	centre := func(c image.Image) func(image.Image) bool {
		return func(img image.Image) bool {
			return img.Bounds().Dx() == 1920 && near(img.At(960, 540), c.At(0, 0))
		}
	}
	m.waitFor(t, 15*time.Second, "the red window at 1920×1080", centre(image.NewUniform(red)))
	win.Paint(blue)
	m.waitFor(t, 5*time.Second, "the window turn blue", centre(image.NewUniform(blue)))

	if err := h264.Available(); err == nil {
		r, err := whepclient.Connect(context.Background(), base+"/whep?t="+token, whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		dec, err := h264.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		win.Paint(green)
		if !decodeUntil(r, dec, 15*time.Second, centre(image.NewUniform(green))) {
			t.Fatal("the WebRTC viewer never decoded the green window")
		}
	}

	wl.Kill("mutter")
	st := waitStatus(t, base, "the capture problem after mutter died", func(st web.Status) bool { return st.State == "error" })
	t.Logf("status after mutter died: %q", st.Error)
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("deskcast is gone after the compositor died: %v", err)
	}
}

// TestWaylandAsksAtStart: with no permission stored, Start sharing asks the
// desktop at once (its dialog is up, and the share says so), not when the
// first viewer comes; stopping then closes the dialog and exits promptly.
func TestWaylandAsksAtStart(t *testing.T) {
	testenv.GnomeWayland(t, 1280, 720)
	port := freePort(t)
	cmd, out := startHeadlessLines(t, nil, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token)
	out.wait(t, "screen: waiting for you to choose a screen in the system dialog", 10*time.Second)
	signalExit(t, cmd, os.Interrupt, 5*time.Second) // with the dialog up
}

// TestWaylandControl is remote control on a real GNOME Wayland session: with
// control on for every viewer, Start sharing asks the desktop through its
// RemoteDesktop portal at once; the presenter allows remote interaction in
// the dialog; a viewer's moves, clicks, wheel, keys and text then reach a
// GTK window where the picture says, at the desktop's own coordinates.
func TestWaylandControl(t *testing.T) {
	wl := testenv.GnomeWayland(t, 1280, 720)
	win := wl.Window(red)
	_, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80, Control: access.ControlAll,
		PortalToken: wl.SeedScreencast()})
	wl.AcceptRemoteDesktop(1280, 720, true)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/control?t="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(msg string, want ...string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			win.Expect(t, w)
		}
	}
	// Fractions of the picture: (0.5, 0.5) is pixel (640, 360) of 1280×720.
	send(`{"t":"move","x":0.5,"y":0.5}`, "motion 640 360")
	send(`{"t":"move","x":0.25,"y":0.75}`, "motion 320 540")
	send(`{"t":"down","x":0.25,"y":0.75,"b":0}`, "press 1")
	send(`{"t":"up","x":0.25,"y":0.75,"b":0}`, "release 1")
	send(`{"t":"down","x":0.25,"y":0.75,"b":2}`, "press 3")
	send(`{"t":"up","x":0.25,"y":0.75,"b":2}`, "release 3")
	send(`{"t":"wheel","x":0.25,"y":0.75,"dy":1}`, "scroll down")
	send(`{"t":"key","k":"Enter","down":true}`, "keydown Return")
	send(`{"t":"key","k":"Enter","down":false}`, "keyup Return")
	send(`{"t":"text","s":"xY"}`, "keydown x", "keydown Y")
}
