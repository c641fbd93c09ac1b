package input

import (
	"errors"
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// openAccepted opens an Injector on the Wayland session while the test
// answers the desktop's dialog (allow: with "Allow remote interaction" on).
func openAccepted(t *testing.T, wl *testenv.Wayland, allow bool) (*Injector, error) {
	t.Helper()
	type res struct {
		in  *Injector
		err error
	}
	ch := make(chan res, 1)
	go func() {
		in, err := Open()
		ch <- res{in, err}
	}()
	wl.AcceptRemoteDesktop(1280, 720, allow)
	select {
	case r := <-ch:
		if r.in != nil {
			t.Cleanup(func() { r.in.Close() })
		}
		return r.in, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("Open still waiting 20 s after the dialog was answered")
	}
	return nil, nil
}

// TestPortalInput drives a GTK window on a real GNOME Wayland session
// (headless mutter) through the RemoteDesktop portal, after the presenter
// allowed it in the desktop's dialog: the pointer lands where asked, the
// buttons, the wheel, named keys and typed text arrive; with "Allow remote
// interaction" left off, Open says so.
func TestPortalInput(t *testing.T) {
	wl := testenv.GnomeWayland(t, 1280, 720)
	win := wl.Window(color.RGBA{200, 30, 30, 255})
	if err := Available(); err != nil {
		t.Fatalf("Available on GNOME Wayland = %v, want nil (the RemoteDesktop portal)", err)
	}

	t.Run("interaction left off", func(t *testing.T) {
		_, err := openAccepted(t, wl, false)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Allow remote interaction") {
			t.Fatalf("Open = %v, want ErrUnavailable naming the switch", err)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		in, err := openAccepted(t, wl, true)
		if err != nil {
			t.Fatal(err)
		}
		step := func(what string, err error, want ...string) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for _, w := range want {
				win.Expect(t, w)
			}
		}
		step("move", in.Move(400, 300), "motion 400 300")
		step("move", in.Move(1000, 650), "motion 1000 650")
		step("left button", in.Button(ButtonLeft, true), "press 1")
		step("left button", in.Button(ButtonLeft, false), "release 1")
		step("right button", in.Button(ButtonRight, true), "press 3")
		step("right button", in.Button(ButtonRight, false), "release 3")
		step("wheel", in.Scroll(0, 1), "scroll down")
		step("wheel", in.Scroll(0, -1), "scroll up")
		step("Enter", in.Key("Enter", true), "keydown Return")
		step("Enter", in.Key("Enter", false), "keyup Return")
		step("text", in.Type("Hi!"), "keydown H", "keydown i", "keydown exclam")
	})
}
