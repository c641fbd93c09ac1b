package testenv

import (
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// InputEvent is one pointer or keyboard event the recorder's window received.
type InputEvent struct {
	Kind   string // "motion", "press", "release", "keydown", "keyup"
	Detail byte   // button or keycode; 0 for motion
	X, Y   int    // root (screen) coordinates
	State  uint16 // modifiers and buttons held before the event
	Time   xproto.Timestamp
}

func (e InputEvent) String() string {
	if e.Kind == "motion" {
		return fmt.Sprintf("motion at %d,%d", e.X, e.Y)
	}
	return fmt.Sprintf("%s %d at %d,%d", e.Kind, e.Detail, e.X, e.Y)
}

// Pt is where the event happened on the screen.
func (e InputEvent) Pt() image.Point { return image.Pt(e.X, e.Y) }

// Recorder is a second X client with an input-only window over the whole
// screen that records the input reaching it. Being input-only, the window
// leaves what the screen shows (and so any capture of it) untouched.
type Recorder struct {
	conn   *xgb.Conn
	win    xproto.Window
	events chan InputEvent
}

// Record maps the recorder's window over x's screen, above everything,
// gives it the keyboard focus and records until the test ends.
func (x *X) Record(t testing.TB) *Recorder {
	t.Helper()
	conn, err := xgb.NewConnDisplay(x.Display)
	if err != nil {
		t.Fatalf("recorder connection: %v", err)
	}
	screen := xproto.Setup(conn).DefaultScreen(conn)
	r := &Recorder{conn: conn, events: make(chan InputEvent, 4096)}
	r.win, _ = xproto.NewWindowId(conn)
	mask := uint32(xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease | xproto.EventMaskPointerMotion |
		xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease)
	if err := xproto.CreateWindowChecked(conn, 0, r.win, screen.Root, 0, 0,
		uint16(x.Width), uint16(x.Height), 0, xproto.WindowClassInputOnly, 0,
		xproto.CwOverrideRedirect|xproto.CwEventMask, []uint32{1, mask}).Check(); err != nil {
		conn.Close()
		t.Fatalf("creating the recorder's window: %v", err)
	}
	if err := xproto.MapWindowChecked(conn, r.win).Check(); err != nil {
		conn.Close()
		t.Fatalf("mapping the recorder's window: %v", err)
	}
	if err := xproto.SetInputFocusChecked(conn, xproto.InputFocusPointerRoot, r.win, xproto.TimeCurrentTime).Check(); err != nil {
		conn.Close()
		t.Fatalf("focusing the recorder's window: %v", err)
	}

	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, xerr := conn.WaitForEvent()
			if ev == nil && xerr == nil {
				return // connection closed
			}
			var e InputEvent
			switch ev := ev.(type) {
			case xproto.MotionNotifyEvent:
				e = InputEvent{"motion", 0, int(ev.RootX), int(ev.RootY), ev.State, ev.Time}
			case xproto.ButtonPressEvent:
				e = InputEvent{"press", byte(ev.Detail), int(ev.RootX), int(ev.RootY), ev.State, ev.Time}
			case xproto.ButtonReleaseEvent:
				e = InputEvent{"release", byte(ev.Detail), int(ev.RootX), int(ev.RootY), ev.State, ev.Time}
			case xproto.KeyPressEvent:
				e = InputEvent{"keydown", byte(ev.Detail), int(ev.RootX), int(ev.RootY), ev.State, ev.Time}
			case xproto.KeyReleaseEvent:
				e = InputEvent{"keyup", byte(ev.Detail), int(ev.RootX), int(ev.RootY), ev.State, ev.Time}
			default:
				continue // MappingNotify and the like
			}
			select {
			case r.events <- e:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		conn.Close()
		<-done
	})
	return r
}

// Drain returns the events received so far and not yet returned.
func (r *Recorder) Drain() []InputEvent {
	var evs []InputEvent
	for {
		select {
		case e := <-r.events:
			evs = append(evs, e)
		default:
			return evs
		}
	}
}

// Next returns the next event, failing the test after 5 s without one.
func (r *Recorder) Next(t testing.TB) InputEvent {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no input event within 5 s")
		return InputEvent{}
	}
}

// Collect returns the events that arrive before a marker: a pointer motion
// that move (the injector under test) makes after everything the test sent,
// to a point the pointer is not at, so that it always produces an event.
func (r *Recorder) Collect(t testing.TB, move func(x, y int) error) []InputEvent {
	t.Helper()
	mark := 1
	if r.Pointer(t) == image.Pt(mark, mark) {
		mark = 2
	}
	if err := move(mark, mark); err != nil {
		t.Fatalf("moving to the marker: %v", err)
	}
	var evs []InputEvent
	for {
		e := r.Next(t)
		if e.Kind == "motion" && e.X == mark && e.Y == mark {
			if n := len(evs); n > 0 && evs[n-1].X == mark && evs[n-1].Y == mark {
				t.Fatalf("the marker point was reached before the marker: %v", evs)
			}
			return evs
		}
		evs = append(evs, e)
	}
}

// During returns every event that arrives within d.
func (r *Recorder) During(d time.Duration) []InputEvent {
	var evs []InputEvent
	end := time.After(d)
	for {
		select {
		case e := <-r.events:
			evs = append(evs, e)
		case <-end:
			return evs
		}
	}
}

// Until collects events until done says they are complete, then for settle
// more (to catch any extra ones). It fails the test when done is not
// satisfied within the time given.
func (r *Recorder) Until(t testing.TB, within, settle time.Duration, done func([]InputEvent) bool) []InputEvent {
	t.Helper()
	var evs []InputEvent
	deadline := time.After(within)
	for !done(evs) {
		select {
		case e := <-r.events:
			evs = append(evs, e)
		case <-deadline:
			t.Fatalf("input incomplete after %v; got %v", within, evs)
		}
	}
	return append(evs, r.During(settle)...)
}

// Pointer returns where the pointer is.
func (r *Recorder) Pointer(t testing.TB) image.Point {
	t.Helper()
	p, err := xproto.QueryPointer(r.conn, r.win).Reply()
	if err != nil {
		t.Fatalf("querying the pointer: %v", err)
	}
	return image.Pt(int(p.RootX), int(p.RootY))
}

// Keysyms reads the keyboard mapping: keycode → its keysyms.
func (r *Recorder) Keysyms(t testing.TB) map[byte][]xproto.Keysym {
	t.Helper()
	setup := xproto.Setup(r.conn)
	n := int(setup.MaxKeycode) - int(setup.MinKeycode) + 1
	rep, err := xproto.GetKeyboardMapping(r.conn, setup.MinKeycode, byte(n)).Reply()
	if err != nil {
		t.Fatalf("reading the keyboard mapping: %v", err)
	}
	per := int(rep.KeysymsPerKeycode)
	m := map[byte][]xproto.Keysym{}
	for i := range n {
		m[byte(setup.MinKeycode)+byte(i)] = rep.Keysyms[i*per : (i+1)*per]
	}
	return m
}

// KeysymOf is what a client reads for a key event with mapping m: the
// keycode's first keysym, or its second when Shift is held (the upper case
// of the first for a lone letter).
func KeysymOf(m map[byte][]xproto.Keysym, e InputEvent) xproto.Keysym {
	row := m[e.Detail]
	if len(row) == 0 {
		return 0
	}
	lo, hi := row[0], xproto.Keysym(0)
	if len(row) > 1 {
		hi = row[1]
	}
	if hi == 0 && lo >= 'a' && lo <= 'z' {
		hi = lo - 'a' + 'A'
	}
	if e.State&xproto.ModMaskShift != 0 && hi != 0 {
		return hi
	}
	return lo
}
