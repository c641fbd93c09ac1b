//go:build darwin

package input

// Remote control on macOS: CoreGraphics events (CGEvent) posted at the HID
// level, where a real mouse's and keyboard's enter. The frameworks are loaded
// at run time through purego, without cgo, so this file also builds (and is
// vetted) when cross-compiling with CGO_ENABLED=0.
//
// macOS drops posted events without a word unless the user has allowed the
// process in System Settings ▸ Privacy & Security ▸ Accessibility, so
// controlAvailable asks AXIsProcessTrusted first.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unicode/utf16"
	"unsafe"

	"github.com/ebitengine/purego"
)

const (
	frameworkCoreFoundation     = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
	frameworkCoreGraphics       = "/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics"
	frameworkApplicationService = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"

	// CGEventType
	cgEventLeftMouseDown     = 1
	cgEventLeftMouseUp       = 2
	cgEventRightMouseDown    = 3
	cgEventRightMouseUp      = 4
	cgEventMouseMoved        = 5
	cgEventLeftMouseDragged  = 6
	cgEventRightMouseDragged = 7
	cgEventOtherMouseDown    = 25
	cgEventOtherMouseUp      = 26
	cgEventOtherMouseDragged = 27

	// CGMouseButton
	cgMouseButtonLeft   = 0
	cgMouseButtonRight  = 1
	cgMouseButtonCenter = 2

	cgMouseEventClickState = 1 // CGEventField kCGMouseEventClickState
	cgScrollEventUnitLine  = 1 // CGScrollEventUnit kCGScrollEventUnitLine
	cgHIDEventTap          = 0 // CGEventTapLocation kCGHIDEventTap

	macKeyReturn = 36 // kVK_Return
	macKeyTab    = 48 // kVK_Tab

	// maxWheelLines is the most one scroll event carries; Apple's
	// documentation warns that values outside about ±10 may misbehave.
	maxWheelLines = 10
)

// errNotTrusted is what macOS needs from the user before it takes our events.
var errNotTrusted = errors.New("macOS: allow Deskcast (or the terminal running it) in System Settings ▸ Privacy & Security ▸ Accessibility, then turn remote control on again")

// cgPoint is CGPoint: two CGFloats, which are doubles on 64-bit macOS.
// purego passes and returns it by value as the C ABI does (in two floating
// point registers on both arm64 and amd64), which it supports on darwin.
type cgPoint struct{ X, Y float64 }

// cg holds the C functions and constants, loaded once by loadCG.
var cg struct {
	once sync.Once
	err  error

	cfRelease            func(ref uintptr)
	cfDictionaryCreate   func(allocator uintptr, keys, values *uintptr, n int, keyCallBacks, valueCallBacks uintptr) uintptr
	eventCreate          func(source uintptr) uintptr
	eventGetLocation     func(ev uintptr) cgPoint
	createMouseEvent     func(source uintptr, typ uint32, pos cgPoint, button uint32) uintptr
	createKeyboardEvent  func(source uintptr, key uint16, down bool) uintptr
	setIntegerValueField func(ev uintptr, field uint32, value int64)
	setFlags             func(ev uintptr, flags uint64)
	setUnicodeString     func(ev uintptr, n uint, s *uint16)
	post                 func(tap uint32, ev uintptr)
	axIsProcessTrusted   func() bool

	// CGEventCreateScrollWheelEvent, the classic call, is C-variadic: on
	// Apple's arm64 ABI variadic arguments go on the stack, while purego
	// passes every argument as for a fixed-argument function (in registers),
	// so the wheel deltas would be garbage. CGEventCreateScrollWheelEvent2
	// (macOS 13+) takes the same arguments without the "...". Nil on older
	// macOS, where scroll reports that it cannot.
	createScrollWheelEvent2 func(source uintptr, units, wheelCount uint32, wheel1, wheel2, wheel3 int32) uintptr

	// For the Accessibility prompt; nil or 0 if any is missing, and then
	// there is no prompt, only the explanation.
	axIsProcessTrustedWithOptions func(options uintptr) bool
	cfBooleanTrue                 uintptr // kCFBooleanTrue (a CFBooleanRef)
	axPromptKey                   uintptr // kAXTrustedCheckOptionPrompt (a CFStringRef)
	cfKeyCallBacks                uintptr // &kCFTypeDictionaryKeyCallBacks
	cfValueCallBacks              uintptr // &kCFTypeDictionaryValueCallBacks
}

func loadCG() error {
	cg.once.Do(func() { cg.err = loadCGSymbols() })
	return cg.err
}

func loadCGSymbols() (err error) {
	// purego.RegisterFunc panics only on a Go type it cannot pass, which
	// would be a bug here; still, a bug should not take the app down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loading CoreGraphics functions: %v", r)
		}
	}()
	open := func(path string) (uintptr, error) {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return 0, fmt.Errorf("loading %s: %w", path, err)
		}
		return h, nil
	}
	cf, err := open(frameworkCoreFoundation)
	if err != nil {
		return err
	}
	cgLib, err := open(frameworkCoreGraphics)
	if err != nil {
		return err
	}
	as, err := open(frameworkApplicationService)
	if err != nil {
		return err
	}
	// Resolve with Dlsym first: purego.RegisterLibFunc would panic on a
	// missing symbol.
	bind := func(lib uintptr, name string, fptr any) error {
		sym, err := purego.Dlsym(lib, name)
		if err != nil || sym == 0 {
			return fmt.Errorf("looking up %s: %w", name, errors.Join(err, errors.New("symbol not found")))
		}
		purego.RegisterFunc(fptr, sym)
		return nil
	}
	for _, f := range []struct {
		lib  uintptr
		name string
		fptr any
	}{
		{cf, "CFRelease", &cg.cfRelease},
		{cgLib, "CGEventCreate", &cg.eventCreate},
		{cgLib, "CGEventGetLocation", &cg.eventGetLocation},
		{cgLib, "CGEventCreateMouseEvent", &cg.createMouseEvent},
		{cgLib, "CGEventCreateKeyboardEvent", &cg.createKeyboardEvent},
		{cgLib, "CGEventSetIntegerValueField", &cg.setIntegerValueField},
		{cgLib, "CGEventSetFlags", &cg.setFlags},
		{cgLib, "CGEventKeyboardSetUnicodeString", &cg.setUnicodeString},
		{cgLib, "CGEventPost", &cg.post},
		{as, "AXIsProcessTrusted", &cg.axIsProcessTrusted},
	} {
		if err := bind(f.lib, f.name, f.fptr); err != nil {
			return err
		}
	}

	if bind(cgLib, "CGEventCreateScrollWheelEvent2", &cg.createScrollWheelEvent2) != nil {
		cg.createScrollWheelEvent2 = nil
	}

	// The prompt's dictionary, {kAXTrustedCheckOptionPrompt: kCFBooleanTrue}.
	// The constants are data symbols: Dlsym gives their addresses.
	sym := func(lib uintptr, name string) uintptr {
		p, err := purego.Dlsym(lib, name)
		if err != nil {
			return 0
		}
		return p
	}
	trueAddr, keyAddr := sym(cf, "kCFBooleanTrue"), sym(as, "kAXTrustedCheckOptionPrompt")
	keyCB, valueCB := sym(cf, "kCFTypeDictionaryKeyCallBacks"), sym(cf, "kCFTypeDictionaryValueCallBacks")
	if trueAddr != 0 && keyAddr != 0 && keyCB != 0 && valueCB != 0 &&
		bind(cf, "CFDictionaryCreate", &cg.cfDictionaryCreate) == nil &&
		bind(as, "AXIsProcessTrustedWithOptions", &cg.axIsProcessTrustedWithOptions) == nil {
		cg.cfBooleanTrue, cg.axPromptKey = deref(trueAddr), deref(keyAddr)
		cg.cfKeyCallBacks, cg.cfValueCallBacks = keyCB, valueCB // passed by address
	} else {
		cg.axIsProcessTrustedWithOptions = nil
	}
	return nil
}

// deref reads the pointer stored at addr, a C global's address from Dlsym.
// Going through a **uintptr keeps vet's unsafeptr check quiet; it is meant
// for Go memory, and addr is C memory that never moves.
func deref(addr uintptr) uintptr {
	return **(**uintptr)(unsafe.Pointer(&addr))
}

var promptOnce sync.Once

// promptAccessibility shows macOS's own "would like to control this
// computer" dialog, which leads to the Accessibility settings.
func promptAccessibility() {
	if cg.axIsProcessTrustedWithOptions == nil || cg.cfBooleanTrue == 0 || cg.axPromptKey == 0 {
		return
	}
	keys, values := []uintptr{cg.axPromptKey}, []uintptr{cg.cfBooleanTrue}
	dict := cg.cfDictionaryCreate(0, &keys[0], &values[0], 1, cg.cfKeyCallBacks, cg.cfValueCallBacks)
	if dict == 0 {
		return
	}
	cg.axIsProcessTrustedWithOptions(dict)
	cg.cfRelease(dict)
}

func controlAvailable() error {
	if err := loadCG(); err != nil {
		return fmt.Errorf("%w: macOS: %w", ErrUnavailable, err)
	}
	if cg.axIsProcessTrusted() {
		return nil
	}
	// Once per process: the app asks again every few seconds, and macOS
	// shows its dialog only the first time anyway.
	promptOnce.Do(promptAccessibility)
	return fmt.Errorf("%w: %w", ErrUnavailable, errNotTrusted)
}

// inputSys posts CGEvents. Injector's mutex guards it.
type inputSys struct {
	held   [ButtonRight + 1]bool // indexed by MouseButton
	flags  uint64                // CGEventFlags of the modifiers held through key
	clicks clickCounter
	pos    cgPoint // where move last put the pointer
	moved  bool    // pos is set
}

func openInputSys(context.Context) (*inputSys, error) {
	if err := controlAvailable(); err != nil {
		return nil, err
	}
	return &inputSys{}, nil
}

// post sends ev through the HID event tap and releases it. CGEventPost says
// nothing when macOS drops the event (no Accessibility permission, secure
// input such as a password field); controlAvailable checked the permission.
func (s *inputSys) post(ev uintptr, what string, flags bool) error {
	if ev == 0 {
		return fmt.Errorf("creating the %s event failed", what)
	}
	if flags {
		cg.setFlags(ev, s.flags)
	}
	cg.post(cgHIDEventTap, ev)
	cg.cfRelease(ev)
	return nil
}

// move puts the pointer at (x, y). Monitor bounds (kbinani/screenshot's,
// from CGDisplayBounds) are in CoreGraphics' global display space: points,
// with the origin at the main display's top-left corner and y growing
// downwards. CGEvent locations use the same space, so no conversion is
// needed; on a Retina display one point is 2×2 pixels.
func (s *inputSys) move(x, y int) error {
	typ, button := uint32(cgEventMouseMoved), uint32(cgMouseButtonLeft)
	// While a button is held a move is a drag, as macOS's own events say:
	// applications track drags through the dragged events only.
	switch {
	case s.held[ButtonLeft]:
		typ = cgEventLeftMouseDragged
	case s.held[ButtonRight]:
		typ, button = cgEventRightMouseDragged, cgMouseButtonRight
	case s.held[ButtonMiddle]:
		typ, button = cgEventOtherMouseDragged, cgMouseButtonCenter
	}
	p := cgPoint{float64(x), float64(y)}
	if err := s.post(cg.createMouseEvent(0, typ, p, button), "mouse move", s.flags != 0); err != nil {
		return err
	}
	s.pos, s.moved = p, true
	return nil
}

// location is where a button event goes: where move last put the pointer.
// Reading the cursor back right after posting a move could give the old
// position, as the window server handles posted events asynchronously.
// Before any move, it is the cursor's current position.
func (s *inputSys) location() (cgPoint, error) {
	if s.moved {
		return s.pos, nil
	}
	ev := cg.eventCreate(0)
	if ev == 0 {
		return cgPoint{}, errors.New("reading the pointer position failed")
	}
	p := cg.eventGetLocation(ev)
	cg.cfRelease(ev)
	return p, nil
}

func (s *inputSys) button(b MouseButton, down bool) error {
	var typ, button uint32
	switch b {
	case ButtonLeft:
		typ, button = cgEventLeftMouseDown, cgMouseButtonLeft
	case ButtonRight:
		typ, button = cgEventRightMouseDown, cgMouseButtonRight
	case ButtonMiddle:
		typ, button = cgEventOtherMouseDown, cgMouseButtonCenter
	default:
		return fmt.Errorf("unknown mouse button %d", int(b))
	}
	if !down {
		typ++ // each button's up event follows its down event
	}
	p, err := s.location()
	if err != nil {
		return err
	}
	// macOS applications read double-clicks from the click count each event
	// carries, not from timing: the second click's down and up carry 2.
	var n int
	if down {
		n = s.clicks.press(b, int(math.Round(p.X)), int(math.Round(p.Y)), time.Now())
	} else {
		n = s.clicks.release(b, time.Now())
	}
	ev := cg.createMouseEvent(0, typ, p, button)
	if ev != 0 {
		cg.setIntegerValueField(ev, cgMouseEventClickState, int64(n))
	}
	if err := s.post(ev, "mouse button", s.flags != 0); err != nil {
		return err
	}
	s.held[b] = down
	return nil
}

// scroll sends whole lines, one per notch. CoreGraphics counts positive
// wheel values as up (wheel 1) and left (wheel 2), the opposite of our dy
// (DOM deltaY: positive is down) and dx (positive is right).
func (s *inputSys) scroll(dx, dy int) error {
	if cg.createScrollWheelEvent2 == nil {
		return errors.New("scrolling needs macOS 13 or later (CGEventCreateScrollWheelEvent2)")
	}
	clamp := func(v int) int { return min(max(v, -maxWheelLines), maxWheelLines) }
	for dx != 0 || dy != 0 {
		v, h := clamp(dy), clamp(dx)
		wheels := uint32(1)
		if h != 0 {
			wheels = 2
		}
		ev := cg.createScrollWheelEvent2(0, cgScrollEventUnitLine, wheels, int32(-v), int32(-h), 0)
		if err := s.post(ev, "scroll wheel", s.flags != 0); err != nil {
			return err
		}
		dx, dy = dx-h, dy-v
	}
	return nil
}

// key presses or releases a key. Each key event carries the modifiers held,
// a modifier's own press included, as a real keyboard's do, so that a held
// Control or Command applies to the next key (Ctrl+C, Cmd+V).
func (s *inputSys) key(c keyCode, down bool) error {
	flags := withKey(s.flags, c.mac, down)
	ev := cg.createKeyboardEvent(0, c.mac, down)
	if ev == 0 {
		return errors.New("creating the key event failed")
	}
	cg.setFlags(ev, flags)
	cg.post(cgHIDEventTap, ev)
	cg.cfRelease(ev)
	s.flags = flags
	return nil
}

// typeText types each character with a key press and release, as a Unicode
// string attached to the events (so any character types, whatever the
// keyboard layout), or as its US key while Command or Control is held (see
// cgTextKey).
func (s *inputSys) typeText(text string) error {
	for _, r := range text {
		switch r {
		case '\n', '\t':
			code := uint16(macKeyReturn)
			if r == '\t' {
				code = macKeyTab
			}
			if err := s.tap(code, nil); err != nil {
				return err
			}
			continue
		}
		code, unicode := cgTextKey(r, s.flags)
		var units []uint16
		if unicode {
			units = utf16.Encode([]rune{r}) // a surrogate pair outside the BMP
		}
		if err := s.tap(code, units); err != nil {
			return fmt.Errorf("%q: %w", r, err)
		}
	}
	return nil
}

// tap presses and releases the key with virtual key code code, with the
// held modifiers and, unless units is empty, that text attached.
func (s *inputSys) tap(code uint16, units []uint16) error {
	for _, down := range []bool{true, false} {
		ev := cg.createKeyboardEvent(0, code, down)
		if ev != 0 && len(units) > 0 {
			cg.setUnicodeString(ev, uint(len(units)), &units[0])
		}
		if err := s.post(ev, "key", true); err != nil {
			return err
		}
	}
	return nil
}

// close has nothing to give back: Injector releases held buttons and keys
// first, and the frameworks stay loaded for the next Injector.
func (s *inputSys) close() error { return nil }
