package input

import "time"

// The bookkeeping macOS's CoreGraphics injection (input_darwin.go) needs and
// the X server or Windows does for us: which click of a multi-click a press
// is, and which modifier flags an event carries. It builds everywhere so its
// tests run on every platform.

const (
	// multiClickTime and multiClickSlop bound a double-click: the next press
	// of the same button within this long of the previous press or release,
	// and within this many points of the previous press. 500 ms is macOS's
	// default double-click interval.
	multiClickTime = 500 * time.Millisecond
	multiClickSlop = 4
)

// clickCounter numbers the presses of a multi-click. On macOS the click count
// travels in each mouse event (kCGMouseEventClickState) and applications read
// it instead of timing clicks themselves, so an injected double-click needs
// the count 2 on its second press and release.
type clickCounter struct {
	button MouseButton
	x, y   int       // where the last press was
	at     time.Time // the last press or release
	count  int       // 0 before the first press
}

// press returns the click count of a press of b at (x, y) at time t.
func (c *clickCounter) press(b MouseButton, x, y int, t time.Time) int {
	dt := t.Sub(c.at)
	if c.count > 0 && b == c.button && dt >= 0 && dt <= multiClickTime &&
		withinSlop(x, c.x) && withinSlop(y, c.y) {
		c.count++
	} else {
		c.count = 1
	}
	c.button, c.x, c.y, c.at = b, x, y, t
	return c.count
}

// release returns the click count of a release of b at time t: that of its
// press, or 1 when another button was pressed since.
func (c *clickCounter) release(b MouseButton, t time.Time) int {
	if c.count == 0 || b != c.button {
		return 1
	}
	c.at = t
	return c.count
}

func withinSlop(a, b int) bool {
	return a-b <= multiClickSlop && b-a <= multiClickSlop
}

// CGEventFlags bits for the modifiers (kCGEventFlagMask* in CGEventTypes.h).
const (
	cgFlagShift     uint64 = 0x00020000
	cgFlagControl   uint64 = 0x00040000
	cgFlagAlternate uint64 = 0x00080000
	cgFlagCommand   uint64 = 0x00100000
)

// cgModifierFlag is the CGEventFlags bit of a modifier's macOS virtual key
// code, or 0 for any other key.
func cgModifierFlag(mac uint16) uint64 {
	switch mac {
	case 56: // kVK_Shift
		return cgFlagShift
	case 59: // kVK_Control
		return cgFlagControl
	case 58: // kVK_Option
		return cgFlagAlternate
	case 55: // kVK_Command
		return cgFlagCommand
	}
	return 0
}

// withKey returns the modifier flags held after pressing (down) or releasing
// the key with macOS virtual key code mac when flags were held before. A real
// keyboard's modifier press already carries its own flag, and its release no
// longer does; other keys leave the flags alone.
func withKey(flags uint64, mac uint16, down bool) uint64 {
	f := cgModifierFlag(mac)
	if down {
		return flags | f
	}
	return flags &^ f
}

// ansiKeys is the macOS virtual key code (kVK_ANSI_*) of the key that types
// each printable ASCII character on a US keyboard, Shift or not.
var ansiKeys = func() map[rune]uint16 {
	m := map[rune]uint16{' ': 49}
	for i, r := range "asdfhgzxcv" {
		m[r] = uint16(i) // kVK_ANSI_A = 0 … kVK_ANSI_V = 9
	}
	for r, k := range map[rune]uint16{
		'b': 11, 'q': 12, 'w': 13, 'e': 14, 'r': 15, 'y': 16, 't': 17, 'o': 31, 'u': 32,
		'i': 34, 'p': 35, 'l': 37, 'j': 38, 'k': 40, 'n': 45, 'm': 46,
		'1': 18, '2': 19, '3': 20, '4': 21, '6': 22, '5': 23, '=': 24, '9': 25, '7': 26,
		'-': 27, '8': 28, '0': 29, ']': 30, '[': 33, '\'': 39, ';': 41, '\\': 42, ',': 43,
		'/': 44, '.': 47, '`': 50,
		'!': 18, '@': 19, '#': 20, '$': 21, '^': 22, '%': 23, '+': 24, '(': 25, '&': 26,
		'_': 27, '*': 28, ')': 29, '}': 30, '{': 33, '"': 39, ':': 41, '|': 42, '<': 43,
		'?': 44, '>': 47, '~': 50,
	} {
		m[r] = k
	}
	for r := 'a'; r <= 'z'; r++ {
		m[r-'a'+'A'] = m[r]
	}
	return m
}()

// cgTextKey says how to type r with the modifier flags held: on the virtual
// key code it returns, and with r attached to the event as its Unicode string
// (unicode) or not. Text goes as a Unicode string, which types any character
// whatever the keyboard layout; the key code (the US key for r, else 0) is
// only a hint for applications that read it. With Command or Control held,
// though, the viewer means a shortcut (Ctrl+C, Cmd+V): then a character on a
// US key goes as that key alone, exactly as a real keyboard sends it, since
// applications match shortcuts on the key and its translation, not on an
// attached string (Control also changes the characters, Ctrl+C being 0x03).
func cgTextKey(r rune, flags uint64) (code uint16, unicode bool) {
	code, ok := ansiKeys[r]
	if ok && flags&(cgFlagCommand|cgFlagControl) != 0 {
		return code, false
	}
	return code, true
}
