//go:build linux

package testenv

import (
	"context"
	"crypto/rand"
	_ "embed"
	"fmt"
	"image/color"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Wayland is a headless GNOME Wayland session of the test's own: a private
// session bus, PipeWire and WirePlumber, mutter with one virtual monitor
// (software rendering, no GPU), and xdg-desktop-portal with its GNOME
// backend. The test's environment points at it (WAYLAND_DISPLAY,
// XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS, XDG_SESSION_TYPE), so the
// code under test finds it as it would a desktop's.
type Wayland struct {
	t       testing.TB
	Display string
	env     []string
	procs   map[string]*group
	order   []string
	input   dbus.BusObject // mutter's own remote-desktop session, once MovePointer made it
}

// GnomeWayland starts the session with a w×h virtual monitor and stops it
// when the test ends. It takes about a second.
func GnomeWayland(t testing.TB, w, h int) *Wayland {
	t.Helper()
	Need(t, "dbus-daemon", "pipewire", "wireplumber", "mutter", "/usr/libexec/xdg-desktop-portal",
		"/usr/libexec/xdg-desktop-portal-gnome", "/usr/libexec/xdg-permission-store")
	dir := t.TempDir()
	run, home := filepath.Join(dir, "run"), filepath.Join(dir, "home")
	for _, d := range []string{run, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := writeBusConfig(t, dir)
	wl := &Wayland{t: t, Display: "wayland-deskcast", procs: map[string]*group{}}
	t.Cleanup(wl.stop)
	wl.env = []string{"XDG_RUNTIME_DIR=" + run, "HOME=" + home, "XDG_CURRENT_DESKTOP=GNOME",
		"XDG_SESSION_TYPE=wayland", "GSETTINGS_BACKEND=memory", "GTK_A11Y=none", "NO_AT_BRIDGE=1",
		"WAYLAND_DISPLAY=" + wl.Display, "PATH=" + os.Getenv("PATH")}

	addr := make(chan string, 1)
	wl.start("dbus-daemon", []string{"--config-file=" + conf, "--nofork", "--print-address=1"}, func(l string) bool {
		addr <- strings.TrimSpace(l)
		return true
	})
	select {
	case a := <-addr:
		wl.env = append(wl.env, "DBUS_SESSION_BUS_ADDRESS="+a)
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon printed no address within 10 s")
	}
	wl.start("pipewire", nil, nil)
	wl.waitFile(filepath.Join(run, "pipewire-0"))
	wl.start("wireplumber", nil, nil)
	wl.start("mutter", []string{"--headless", "--wayland", "--no-x11", "--wayland-display=" + wl.Display,
		"--virtual-monitor", fmt.Sprintf("%dx%d", w, h)}, nil)
	wl.waitName("org.gnome.Mutter.ScreenCast")
	wl.start("/usr/libexec/xdg-permission-store", nil, nil)
	wl.waitName("org.freedesktop.impl.portal.PermissionStore")
	wl.start("/usr/libexec/xdg-desktop-portal-gnome", nil, nil)
	wl.waitName("org.freedesktop.impl.portal.desktop.gnome")
	wl.start("/usr/libexec/xdg-desktop-portal", nil, nil)
	wl.waitName("org.freedesktop.portal.Desktop")

	for _, kv := range wl.env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "HOME" {
			t.Setenv(k, v)
		}
	}
	t.Setenv("DISPLAY", "")
	return wl
}

// start runs a program of the session with its environment.
func (wl *Wayland) start(prog string, args []string, watch func(string) bool) {
	wl.t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = wl.env
	g, err := startGroup(cmd, watch)
	if err != nil {
		wl.t.Fatalf("starting %s: %v", prog, err)
	}
	name := filepath.Base(prog)
	wl.procs[name] = g
	wl.order = append(wl.order, name)
}

// Kill ends one of the session's programs at once (SIGKILL), as a crash
// would: "mutter", "pipewire", "xdg-desktop-portal"…
func (wl *Wayland) Kill(name string) {
	if g := wl.procs[name]; g != nil {
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.exited
	}
}

func (wl *Wayland) stop() {
	for i := len(wl.order) - 1; i >= 0; i-- {
		g := wl.procs[wl.order[i]]
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		g.stop(2 * time.Second)
	}
	if wl.t.Failed() {
		for _, name := range wl.order {
			wl.t.Logf("%s's last output:\n%s", name, wl.procs[name].out)
		}
	}
}

func (wl *Wayland) waitFile(path string) {
	wl.t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	wl.t.Fatalf("%s did not appear within 10 s", path)
}

// bus connects to the session's bus; the connection closes when the test ends.
func (wl *Wayland) bus() *dbus.Conn {
	wl.t.Helper()
	conn, err := dbus.Connect(wl.getenv("DBUS_SESSION_BUS_ADDRESS"))
	if err != nil {
		wl.t.Fatalf("connecting to the session bus: %v", err)
	}
	wl.t.Cleanup(func() { conn.Close() })
	return conn
}

// getenv returns a variable of the session's environment.
func (wl *Wayland) getenv(key string) string {
	for _, kv := range wl.env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// waitName waits until a program has taken its well-known name on the bus.
func (wl *Wayland) waitName(name string) {
	wl.t.Helper()
	conn := wl.bus()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err == nil && has {
			return
		}
	}
	wl.t.Fatalf("%s did not appear on the session bus within 15 s", name)
}

// SeedScreencast grants the screen-cast permission for mutter's virtual
// monitor in the permission store, as the GNOME dialog would have after
// "Remember this selection", and returns the restore token to present:
// a portal start with it shows no dialog.
func (wl *Wayland) SeedScreencast() string {
	wl.t.Helper()
	type stream struct {
		ID, Type uint32
		Data     dbus.Variant
	}
	type gnome struct {
		Created, Used int64
		Streams       []stream
	}
	type restore struct {
		Provider string
		Version  uint32
		Data     dbus.Variant
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	now := time.Now().UnixMicro()
	data := dbus.MakeVariant(restore{"GNOME", 1, dbus.MakeVariant(gnome{now, now,
		[]stream{{0, 1, dbus.MakeVariant("MetaVendor:MetaVirtualMonitor:0x00")}}})})
	err := wl.bus().Object("org.freedesktop.impl.portal.PermissionStore", "/org/freedesktop/impl/portal/PermissionStore").
		Call("org.freedesktop.impl.portal.PermissionStore.Set", 0, "screencast", true, id,
			map[string][]string{"": {"yes"}}, data).Err
	if err != nil {
		wl.t.Fatalf("seeding the screen-cast permission: %v", err)
	}
	return id
}

//go:embed wayland_window.py
var waylandWindow []byte

// WaylandWindow is a full-screen GTK window of one colour, on the Wayland
// session or an X server.
type WaylandWindow struct {
	t      testing.TB
	in     io.WriteCloser
	events chan string
	g      *group
}

// Window opens a full-screen window painted c and waits until it is shown.
func (wl *Wayland) Window(c color.RGBA) *WaylandWindow {
	wl.t.Helper()
	return gtkWindow(wl.t, append(wl.env, "GDK_BACKEND=wayland"), c)
}

// GTKWindow opens the same full-screen GTK window on the test's X server
// (DISPLAY), so that the X11 path is measured against the same client.
func GTKWindow(t testing.TB, c color.RGBA) *WaylandWindow {
	t.Helper()
	return gtkWindow(t, append(os.Environ(), "GDK_BACKEND=x11", "GTK_A11Y=none", "NO_AT_BRIDGE=1"), c)
}

func gtkWindow(t testing.TB, env []string, c color.RGBA) *WaylandWindow {
	t.Helper()
	script := filepath.Join(t.TempDir(), "window.py")
	if err := os.WriteFile(script, waylandWindow, 0o700); err != nil {
		t.Fatal(err)
	}
	// Debian's python3, which has gi; a python3 earlier on PATH may not.
	cmd := exec.Command("/usr/bin/python3", script)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &WaylandWindow{t: t, in: in, events: make(chan string, 64)}
	w.g, err = startGroup(cmd, func(l string) bool {
		select {
		case w.events <- l:
		default: // nobody waits for it (an animation's lines)
		}
		return false
	})
	if err != nil {
		t.Fatalf("starting the GTK window: %v", err)
	}
	t.Cleanup(func() { in.Close(); w.g.stop(2 * time.Second) })
	w.Expect(t, "ready")
	w.Paint(c)
	return w
}

// Animate repaints the window perSecond times a second in changing
// colours, until the next Paint or Animate(0).
func (w *WaylandWindow) Animate(perSecond int) {
	w.t.Helper()
	if _, err := fmt.Fprintf(w.in, "animate %d\n", perSecond); err != nil {
		w.t.Fatalf("animating the window: %v", err)
	}
}

// Click moves the pointer to (x, y) on the screen and clicks the left
// button, through mutter's own remote-desktop API, as a user would.
func (wl *Wayland) Click(x, y int) {
	wl.t.Helper()
	wl.MovePointer(-1e5, -1e5) // to the top left corner, wherever it was
	wl.MovePointer(float64(x), float64(y))
	time.Sleep(100 * time.Millisecond) // the pointer's arrival first: GTK takes a click on entry for focus
	const btnLeft = 0x110              // BTN_LEFT, Linux's evdev code
	for _, down := range []bool{true, false} {
		if err := wl.input.Call("org.gnome.Mutter.RemoteDesktop.Session.NotifyPointerButton", 0, int32(btnLeft), down).Err; err != nil {
			wl.t.Fatalf("clicking at %d,%d: %v", x, y, err)
		}
	}
}

// AcceptRemoteDesktop answers the remote-desktop portal's dialog of
// GNOME 43 (xdg-desktop-portal-gnome) as a presenter would: it waits for
// it, turns "Allow remote interaction" on when allow says so, then clicks
// "Share". The dialog is centred on the w×h monitor with one monitor listed.
func (wl *Wayland) AcceptRemoteDesktop(w, h int, allow bool) {
	wl.t.Helper()
	time.Sleep(time.Second) // the dialog up: it takes GTK 4 a few hundred ms
	cx, cy := w/2, h/2
	// Apart enough not to make a double click.
	wl.Click(cx, cy+110) // a blank part of it: the first click focuses the dialog
	time.Sleep(400 * time.Millisecond)
	if allow {
		wl.Click(cx+190, cy+72) // the switch
		time.Sleep(400 * time.Millisecond)
	}
	wl.Click(cx+213, cy-128) // Share
}

// MovePointer moves the session's pointer by (dx, dy) through mutter's own
// remote-desktop API (the backend the portal uses; no dialog on this side),
// as a user's mouse would.
func (wl *Wayland) MovePointer(dx, dy float64) {
	wl.t.Helper()
	wl.inputSession()
	if err := wl.input.Call("org.gnome.Mutter.RemoteDesktop.Session.NotifyPointerMotionRelative", 0, dx, dy).Err; err != nil {
		wl.t.Fatalf("moving the pointer: %v", err)
	}
}

// inputSession starts mutter's own remote-desktop session once.
func (wl *Wayland) inputSession() {
	wl.t.Helper()
	if wl.input == nil {
		conn := wl.bus()
		var path dbus.ObjectPath
		err := conn.Object("org.gnome.Mutter.RemoteDesktop", "/org/gnome/Mutter/RemoteDesktop").
			Call("org.gnome.Mutter.RemoteDesktop.CreateSession", 0).Store(&path)
		if err != nil {
			wl.t.Fatalf("creating mutter's remote-desktop session: %v", err)
		}
		s := conn.Object("org.gnome.Mutter.RemoteDesktop", path)
		if err := s.Call("org.gnome.Mutter.RemoteDesktop.Session.Start", 0).Err; err != nil {
			wl.t.Fatalf("starting mutter's remote-desktop session: %v", err)
		}
		wl.input = s
	}
}

// Pid is the process id of one of the session's programs ("mutter"…).
func (wl *Wayland) Pid(name string) int {
	if g := wl.procs[name]; g != nil {
		return g.cmd.Process.Pid
	}
	return 0
}

// Paint repaints the window c and waits until GTK has drawn it.
func (w *WaylandWindow) Paint(c color.RGBA) {
	w.t.Helper()
	if _, err := fmt.Fprintf(w.in, "%d %d %d\n", c.R, c.G, c.B); err != nil {
		w.t.Fatalf("painting the window: %v", err)
	}
	w.Expect(w.t, fmt.Sprintf("painted %d %d %d", c.R, c.G, c.B))
}

// Expect waits until the window prints line (one of its input reports:
// "motion X Y", "press 1", "keydown a"…), skipping others, and fails t
// after 15 s.
func (w *WaylandWindow) Expect(t testing.TB, line string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		select {
		case l := <-w.events:
			if l == line {
				return
			}
		case <-w.g.exited:
			t.Fatalf("the GTK window exited:\n%s", w.g.out)
		case <-ctx.Done():
			t.Fatalf("the GTK window did not say %q within 15 s:\n%s", line, w.g.out)
		}
	}
}
