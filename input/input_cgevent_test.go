package input

import (
	"testing"
	"time"
)

func TestClickCounter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		down bool
		b    MouseButton
		x, y int
		at   int // ms after t0
		want int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"single", []step{{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 80, 1}}},
		{"double", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 80, 1},
			{true, ButtonLeft, 11, 9, 200, 2}, {false, ButtonLeft, 0, 0, 280, 2},
		}},
		{"triple", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 50, 1},
			{true, ButtonLeft, 10, 10, 150, 2}, {false, ButtonLeft, 0, 0, 200, 2},
			{true, ButtonLeft, 10, 10, 300, 3}, {false, ButtonLeft, 0, 0, 350, 3},
		}},
		{"slow press counts from the release", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 400, 1},
			{true, ButtonLeft, 10, 10, 800, 2},
		}},
		{"too late", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 50, 1},
			{true, ButtonLeft, 10, 10, 50 + 501, 1},
		}},
		{"too far", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 50, 1},
			{true, ButtonLeft, 10 + multiClickSlop + 1, 10, 100, 1},
		}},
		{"other button", []step{
			{true, ButtonLeft, 10, 10, 0, 1}, {false, ButtonLeft, 0, 0, 50, 1},
			{true, ButtonRight, 10, 10, 100, 1}, {false, ButtonLeft, 0, 0, 120, 1}, {false, ButtonRight, 0, 0, 150, 1},
			{true, ButtonLeft, 10, 10, 200, 1},
		}},
		{"clock going back", []step{
			{true, ButtonLeft, 10, 10, 100, 1}, {true, ButtonLeft, 10, 10, 0, 1},
		}},
		{"release before any press", []step{{false, ButtonMiddle, 0, 0, 0, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c clickCounter
			for i, s := range tc.steps {
				var got int
				if s.down {
					got = c.press(s.b, s.x, s.y, ms(s.at))
				} else {
					got = c.release(s.b, ms(s.at))
				}
				if got != s.want {
					t.Fatalf("step %d %+v: click count %d, want %d", i, s, got, s.want)
				}
			}
		})
	}
}

func TestModifierFlags(t *testing.T) {
	var f uint64
	press := func(k Key, down bool) { f = withKey(f, keyCodes[k].mac, down) }
	press("Control", true)
	press("Shift", true)
	press("ArrowLeft", true) // not a modifier: no change
	if want := cgFlagControl | cgFlagShift; f != want {
		t.Fatalf("flags %#x, want %#x", f, want)
	}
	press("Shift", false)
	press("Meta", true)
	press("Alt", true)
	if want := cgFlagControl | cgFlagCommand | cgFlagAlternate; f != want {
		t.Fatalf("flags %#x, want %#x", f, want)
	}
	for _, k := range []Key{"Control", "Meta", "Alt", "Alt"} {
		press(k, false)
	}
	if f != 0 {
		t.Fatalf("flags %#x after releasing everything, want 0", f)
	}
}

func TestMacKeyCodes(t *testing.T) {
	seen := map[uint16]Key{}
	for k, c := range keyCodes {
		if c.mac == 0 { // kVK_ANSI_A; none of the named keys
			t.Errorf("key %q has no macOS key code", k)
		}
		if o, dup := seen[c.mac]; dup {
			t.Errorf("keys %q and %q share macOS key code %d", k, o, c.mac)
		}
		seen[c.mac] = k
	}
}

func TestCGTextKey(t *testing.T) {
	tests := []struct {
		r       rune
		flags   uint64
		code    uint16
		unicode bool
	}{
		{'a', 0, 0, true},
		{'c', 0, 8, true},
		{'C', cgFlagShift, 8, true},
		{'é', 0, 0, true},
		{'😀', 0, 0, true},
		{'c', cgFlagControl, 8, false},               // Ctrl+C
		{'v', cgFlagCommand, 9, false},               // Cmd+V
		{'Z', cgFlagCommand | cgFlagShift, 6, false}, // Cmd+Shift+Z
		{'?', cgFlagCommand | cgFlagShift, 44, false},
		{'é', cgFlagCommand, 0, true}, // no US key: the string it is
		{'c', cgFlagAlternate, 8, true},
	}
	for _, tc := range tests {
		code, unicode := cgTextKey(tc.r, tc.flags)
		if code != tc.code || unicode != tc.unicode {
			t.Errorf("cgTextKey(%q, %#x) = %d, %v; want %d, %v", tc.r, tc.flags, code, unicode, tc.code, tc.unicode)
		}
	}
	for r := rune(0x21); r < 0x7f; r++ {
		if _, ok := ansiKeys[r]; !ok {
			t.Errorf("printable ASCII %q has no US key", r)
		}
	}
}
