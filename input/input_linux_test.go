package input

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/jezek/xgb/xproto"
)

// watcher records the input reaching the screen (testenv's Recorder) and
// checks it against what the test sent through in.
type watcher struct {
	*testenv.Recorder
	in *Injector
}

// collect returns the events that arrive before a marker move made through
// w.in after everything the test sent.
func (w watcher) collect(t *testing.T) []testenv.InputEvent {
	t.Helper()
	return w.Collect(t, w.in.Move)
}

// expect compares kind, detail and root coordinates of the events before the
// next marker with want.
func (w watcher) expect(t *testing.T, want ...testenv.InputEvent) []testenv.InputEvent {
	t.Helper()
	got := w.collect(t)
	strip := func(es []testenv.InputEvent) []string {
		s := make([]string, len(es))
		for i, e := range es {
			s[i] = e.String()
		}
		return s
	}
	if g, wt := strip(got), strip(want); !slices.Equal(g, wt) {
		t.Fatalf("events:\n got %q\nwant %q", g, wt)
	}
	return got
}

// typed decodes key events the way a client would, with mapping m, and
// checks every press has its release.
func typed(t *testing.T, m map[byte][]xproto.Keysym, evs []testenv.InputEvent) string {
	t.Helper()
	var b strings.Builder
	down := map[byte]bool{}
	for _, e := range evs {
		switch e.Kind {
		case "keydown":
			if down[e.Detail] {
				t.Fatalf("keycode %d pressed twice without a release: %v", e.Detail, evs)
			}
			down[e.Detail] = true
			k := testenv.KeysymOf(m, e)
			switch {
			case k == 0xffe1 || k == 0xffe2: // Shift_L, Shift_R
			case k == 0xff0d:
				b.WriteRune('\n')
			case k == 0xff09:
				b.WriteRune('\t')
			case k < 0x100:
				b.WriteRune(rune(k))
			case k&0xff000000 == 0x01000000:
				b.WriteRune(rune(k & 0xffffff))
			default:
				t.Fatalf("keycode %d gives keysym %#x, not a character", e.Detail, k)
			}
		case "keyup":
			if !down[e.Detail] {
				t.Fatalf("keycode %d released without a press: %v", e.Detail, evs)
			}
			delete(down, e.Detail)
		default:
			t.Fatalf("unexpected %v while typing", e)
		}
	}
	if len(down) > 0 {
		t.Fatalf("keys left down: %v", down)
	}
	return b.String()
}

func ev(kind string, detail byte, x, y int) testenv.InputEvent {
	return testenv.InputEvent{Kind: kind, Detail: detail, X: x, Y: y}
}

// startInput starts Xvfb in an X11 session, a watcher and an Injector.
func startInput(t *testing.T) (*testenv.X, watcher, *Injector) {
	t.Helper()
	t.Setenv("XDG_SESSION_TYPE", "x11")
	t.Setenv("WAYLAND_DISPLAY", "")
	x := testenv.StartX(t, 640, 480)
	rec := x.Record(t)
	in, err := Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return x, watcher{rec, in}, in
}

func TestInputPointer(t *testing.T) {
	_, w, in := startInput(t)

	t.Run("move", func(t *testing.T) {
		tests := []struct {
			x, y         int
			wantX, wantY int
		}{
			{10, 20, 10, 20},
			{639, 479, 639, 479},
			{0, 0, 0, 0},
			{320, 100, 320, 100},
			{123, 456, 123, 456},
			{-50, 1000, 0, 479}, // off the screen: X keeps the pointer on it
		}
		for _, tc := range tests {
			if err := in.Move(tc.x, tc.y); err != nil {
				t.Fatal(err)
			}
			w.expect(t, ev("motion", 0, tc.wantX, tc.wantY))
		}
		if err := in.Move(77, 88); err != nil {
			t.Fatal(err)
		}
		if p := w.Pointer(t); p != image.Pt(77, 88) {
			t.Fatalf("pointer at %v after Move(77, 88)", p)
		}
		w.expect(t, ev("motion", 0, 77, 88))
	})

	t.Run("click", func(t *testing.T) {
		tests := []struct {
			name   string
			button MouseButton
			x, y   int
		}{
			{"left", ButtonLeft, 100, 50},
			{"middle", ButtonMiddle, 200, 60},
			{"right", ButtonRight, 300, 70},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := in.Move(tc.x, tc.y); err != nil {
					t.Fatal(err)
				}
				if err := in.Button(tc.button, true); err != nil {
					t.Fatal(err)
				}
				if err := in.Button(tc.button, false); err != nil {
					t.Fatal(err)
				}
				b := byte(tc.button)
				w.expect(t, ev("motion", 0, tc.x, tc.y), ev("press", b, tc.x, tc.y), ev("release", b, tc.x, tc.y))
			})
		}
	})

	t.Run("double click", func(t *testing.T) {
		if err := in.Move(400, 300); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			for _, down := range []bool{true, false} {
				if err := in.Button(ButtonLeft, down); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := w.expect(t, ev("motion", 0, 400, 300),
			ev("press", 1, 400, 300), ev("release", 1, 400, 300),
			ev("press", 1, 400, 300), ev("release", 1, 400, 300))
		// Toolkits see a double click when the presses are close in time.
		if d := got[3].Time - got[1].Time; d > 250 {
			t.Fatalf("presses %d ms apart", d)
		}
	})

	t.Run("drag", func(t *testing.T) {
		steps := []func() error{
			func() error { return in.Move(100, 100) },
			func() error { return in.Button(ButtonLeft, true) },
			func() error { return in.Move(150, 120) },
			func() error { return in.Move(200, 300) },
			func() error { return in.Button(ButtonLeft, false) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		got := w.expect(t, ev("motion", 0, 100, 100), ev("press", 1, 100, 100),
			ev("motion", 0, 150, 120), ev("motion", 0, 200, 300), ev("release", 1, 200, 300))
		for _, e := range got[2:] {
			if e.State&xproto.KeyButMaskButton1 == 0 {
				t.Fatalf("%v without button 1 held (state %#x)", e, e.State)
			}
		}
	})

	t.Run("scroll", func(t *testing.T) {
		tests := []struct {
			dx, dy  int
			buttons []byte // each pressed and released, in order
		}{
			{0, 1, []byte{5}},
			{0, -1, []byte{4}},
			{0, 3, []byte{5, 5, 5}},
			{1, 0, []byte{7}},
			{-2, 0, []byte{6, 6}},
			{2, -1, []byte{4, 7, 7}},
			{0, 0, nil},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%d,%d", tc.dx, tc.dy), func(t *testing.T) {
				if err := in.Move(320, 240); err != nil { // away from the last marker
					t.Fatal(err)
				}
				if err := in.Scroll(tc.dx, tc.dy); err != nil {
					t.Fatal(err)
				}
				want := []testenv.InputEvent{ev("motion", 0, 320, 240)}
				for _, b := range tc.buttons {
					want = append(want, ev("press", b, 320, 240), ev("release", b, 320, 240))
				}
				w.expect(t, want...)
			})
		}
	})
}

func TestInputKeys(t *testing.T) {
	_, w, in := startInput(t)
	// Keysyms from X11/keysymdef.h, written out here rather than taken from
	// keyCodes so that a wrong entry there fails.
	tests := []struct {
		key    Key
		keysym xproto.Keysym
	}{
		{"Enter", 0xff0d},      // Return
		{"Backspace", 0xff08},  // BackSpace
		{"Tab", 0xff09},        // Tab
		{"Escape", 0xff1b},     // Escape
		{"ArrowLeft", 0xff51},  // Left
		{"ArrowUp", 0xff52},    // Up
		{"ArrowRight", 0xff53}, // Right
		{"ArrowDown", 0xff54},  // Down
		{"Delete", 0xffff},     // Delete
		{"Home", 0xff50},       // Home
		{"End", 0xff57},        // End
		{"PageUp", 0xff55},     // Prior
		{"PageDown", 0xff56},   // Next
		{"Shift", 0xffe1},      // Shift_L
		{"Control", 0xffe3},    // Control_L
		{"Alt", 0xffe9},        // Alt_L
		{"Meta", 0xffeb},       // Super_L
		{" ", 0x20},            // space
	}
	if len(tests) != len(keyCodes) {
		t.Errorf("testing %d keys, keyCodes has %d", len(tests), len(keyCodes))
	}
	for _, tc := range tests {
		t.Run(string(tc.key), func(t *testing.T) {
			for _, down := range []bool{true, false} {
				if err := in.Key(tc.key, down); err != nil {
					t.Fatal(err)
				}
			}
			got := w.collect(t)
			if len(got) != 2 || got[0].Kind != "keydown" || got[1].Kind != "keyup" || got[0].Detail != got[1].Detail {
				t.Fatalf("events %v, want a keydown and a keyup of one keycode", got)
			}
			if k := testenv.KeysymOf(w.Keysyms(t), got[0]); k != tc.keysym {
				t.Fatalf("keycode %d is keysym %#x, want %#x", got[0].Detail, k, tc.keysym)
			}
		})
	}

	t.Run("held modifier", func(t *testing.T) {
		if err := in.Key("Shift", true); err != nil {
			t.Fatal(err)
		}
		if err := in.Key("ArrowRight", true); err != nil {
			t.Fatal(err)
		}
		got := w.collect(t)
		if len(got) != 2 || got[1].State&xproto.ModMaskShift == 0 {
			t.Fatalf("events %v: want the arrow pressed with Shift held", got)
		}
		for _, k := range []Key{"ArrowRight", "Shift"} {
			if err := in.Key(k, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := w.collect(t); len(got) != 2 {
			t.Fatalf("events %v: want two releases", got)
		}
	})
}

func TestInputType(t *testing.T) {
	_, w, in := startInput(t)
	tests := []struct{ name, text string }{
		{"ascii and latin-1", "aZ!é"},
		{"words", "Hello, World ~ 42"},
		{"beyond latin-1", "€жΩ→😀"},
		{"newline and tab", "a\tb\nc"},
		{"repeat", "ééé"},
		{"empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := in.Type(tc.text); err != nil {
				t.Fatal(err)
			}
			// Borrowed keycodes keep their character after Type returns, so
			// the mapping now is the one the events were sent with.
			evs := w.collect(t)
			if got := typed(t, w.Keysyms(t), evs); got != tc.text {
				t.Fatalf("typed %q, want %q (events %v)", got, tc.text, evs)
			}
		})
	}

	t.Run("more characters than spare keycodes", func(t *testing.T) {
		// Each call needs a keycode the keyboard lacks; after maxSpares of
		// them the least recently used one is mapped again.
		letters := []rune("абвгдеёжзийклмн")
		if len(letters) <= maxSpares {
			t.Fatal("too few letters to run out of spare keycodes")
		}
		codes := map[byte]bool{}
		start := time.Now()
		for round := range 2 {
			for _, r := range letters {
				if err := in.Type(string(r)); err != nil {
					t.Fatal(err)
				}
				evs := w.collect(t)
				if got := typed(t, w.Keysyms(t), evs); got != string(r) {
					t.Fatalf("round %d: typed %q, want %q", round, got, string(r))
				}
				codes[evs[0].Detail] = true
			}
		}
		if len(codes) > maxSpares {
			t.Fatalf("used %d keycodes, want at most %d", len(codes), maxSpares)
		}
		if d := time.Since(start); d < spareHold {
			t.Fatalf("reusing keycodes took %v, want at least the hold of %v", d, spareHold)
		}
	})
}

func TestInputCloseRestores(t *testing.T) {
	_, w, in := startInput(t)
	before := w.Keysyms(t)
	for _, step := range []func() error{
		func() error { return in.Type("é€жΩ") },
		func() error { return in.Button(ButtonLeft, true) },
		func() error { return in.Key("Shift", true) },
		func() error { return in.Key("Control", true) },
		func() error { return in.Key("Control", false) },
		func() error { return in.Key("Alt", true) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	evs := w.collect(t)
	keyOf := func(k Key) byte { // the keycode the Key step pressed
		for _, e := range evs {
			if e.Kind == "keydown" && before[e.Detail][0] == xproto.Keysym(keyCodes[k].x11) {
				return e.Detail
			}
		}
		t.Fatalf("no keydown for %q in %v", k, evs)
		return 0
	}
	shift, alt := keyOf("Shift"), keyOf("Alt")

	if err := in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close lets go of what the viewer held, in no set order.
	var got []string
	for range 3 {
		got = append(got, w.Next(t).String())
	}
	slices.Sort(got)
	want := []string{ev("keyup", alt, 1, 1).String(), ev("keyup", shift, 1, 1).String(), ev("release", 1, 1, 1).String()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("on Close:\n got %q\nwant %q", got, want)
	}
	if evs := w.During(100 * time.Millisecond); len(evs) > 0 {
		t.Fatalf("unexpected %v after Close", evs)
	}
	after := w.Keysyms(t)
	for code, row := range before {
		if !slices.Equal(row, after[code]) {
			t.Errorf("keycode %d: %#x before, %#x after Close", code, row, after[code])
		}
	}
	for name, call := range map[string]func() error{
		"Move":   func() error { return in.Move(5, 5) },
		"Button": func() error { return in.Button(ButtonLeft, true) },
		"Scroll": func() error { return in.Scroll(0, 1) },
		"Key":    func() error { return in.Key("Enter", true) },
		"Type":   func() error { return in.Type("a") },
	} {
		if err := call(); err == nil {
			t.Errorf("%s after Close: no error", name)
		}
	}
}

func TestInputRejects(t *testing.T) {
	_, w, in := startInput(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"lower-case key name", func() error { return in.Key("enter", true) }},
		{"X keysym name", func() error { return in.Key("Return", true) }},
		{"unlisted key", func() error { return in.Key("F13", true) }},
		{"empty key", func() error { return in.Key("", true) }},
		{"text as a key", func() error { return in.Key("a", true) }},
		{"trailing space", func() error { return in.Key("ArrowLeft ", false) }},
		{"button 0", func() error { return in.Button(0, true) }},
		{"button 4", func() error { return in.Button(4, true) }},
		{"control character", func() error { return in.Type("ab\x00c") }},
		{"carriage return", func() error { return in.Type("a\r\n") }},
		{"invalid UTF-8", func() error { return in.Type("a\xffb") }},
		{"far off the X range", func() error { return in.Move(40000, 10) }},
		{"too many notches", func() error { return in.Scroll(0, 1000) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil {
				t.Fatal("no error")
			}
			w.expect(t) // nothing sent
		})
	}
}

func TestKeyNames(t *testing.T) {
	for _, k := range []Key{"enter", "Return", "F1", "", "Space", "Win", "Ctrl"} {
		if _, err := lookupKey(k); err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("lookupKey(%q) = %v, want an unknown key error", k, err)
		}
	}
	for k, c := range keyCodes {
		if _, err := lookupKey(k); err != nil || c.x11 == 0 || c.vk == 0 {
			t.Errorf("key %q: %v, %+v", k, err, c)
		}
	}
}

func TestAvailable(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	// A bus of the test's own, with no portal to start: on Wayland, control
	// goes through the desktop's RemoteDesktop portal, and here there is none.
	testenv.SessionBus(t)
	noXTest := startBareX(t, "-extension", "XTEST")
	tests := []struct {
		name                      string
		session, wayland, display string
		want                      string // in the error; "" for none
	}{
		{"x11 session", "x11", "", x.Display, ""},
		{"no session type", "", "", x.Display, ""},
		{"nested wayland on X", "x11", "wayland-1", x.Display, ""},
		{"wayland session with Xwayland", "wayland", "wayland-0", x.Display, "Wayland session"},
		{"wayland, no session type, with Xwayland", "", "wayland-0", x.Display, "Wayland session"},
		{"wayland without X", "", "wayland-0", "", "Wayland session"},
		{"wayland with a dead X", "", "wayland-0", ":9999", "Wayland session"},
		{"no display", "", "", "", "DISPLAY is not set"},
		{"dead X", "", "", ":9999", "connecting to X server"},
		{"no XTEST", "x11", "", noXTest, "no XTEST extension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_SESSION_TYPE", tc.session)
			t.Setenv("WAYLAND_DISPLAY", tc.wayland)
			t.Setenv("DISPLAY", tc.display)
			err := Available()
			in, openErr := Open()
			if openErr == nil {
				in.Close()
			}
			for _, err := range []error{err, openErr} {
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("want no error, got %v", err)
				case tc.want != "" && (!errors.Is(err, ErrUnavailable) || !strings.Contains(fmt.Sprint(err), tc.want)):
					t.Fatalf("got %v, want ErrUnavailable saying %q", err, tc.want)
				}
			}
		})
	}
}

// startBareX starts an Xvfb with extra arguments, which testenv.StartX does
// not take, and returns its display.
func startBareX(t *testing.T, args ...string) string {
	t.Helper()
	testenv.Need(t, "Xvfb")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", append([]string{"-displayfd", "3", "-screen", "0", "320x240x24", "-noreset", "-nolisten", "tcp"}, args...)...)
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Xvfb: %v", err)
	}
	wr.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if n == "" {
			t.Fatal("Xvfb exited before it was ready")
		}
		return ":" + n
	case <-time.After(10 * time.Second):
		t.Fatal("Xvfb did not start within 10 s")
		return ""
	}
}
