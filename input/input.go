// Package input injects remote viewers' mouse and keyboard events into the
// desktop: XTEST on X11, SendInput on Windows, CGEvent on macOS.
package input

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MouseButton names a mouse button.
type MouseButton int

const (
	ButtonLeft   MouseButton = 1
	ButtonMiddle MouseButton = 2
	ButtonRight  MouseButton = 3
)

// Key names a non-text key the way a browser's KeyboardEvent.key does:
// "Enter", "Backspace", "Tab", "Escape", "ArrowLeft", "ArrowRight", "ArrowUp",
// "ArrowDown", "Delete", "Home", "End", "PageUp", "PageDown", "Shift",
// "Control", "Alt", "Meta" and " " (the space bar). Text goes through Type.
type Key string

// ErrUnavailable is returned, wrapped with the reason, when this
// desktop cannot take injected input.
var ErrUnavailable = errors.New("remote control unavailable")

// Injector injects mouse and keyboard events into the desktop. Its methods may
// be called from several goroutines; each returns once the events are sent.
type Injector struct {
	mu      sync.Mutex
	sys     *inputSys // nil once closed
	buttons map[MouseButton]bool
	keys    map[Key]bool
}

// Available returns nil when this desktop can take injected input, or
// ErrUnavailable wrapped with the reason (no X display, a Wayland
// session, no XTEST extension, macOS without the Accessibility permission,
// an unsupported platform).
func Available() error {
	return controlAvailable()
}

// Open connects to the desktop for injecting input. Errors that mean
// control cannot work here wrap ErrUnavailable.
func Open() (*Injector, error) { return OpenContext(context.Background()) }

// OpenContext is Open, giving up when ctx ends: on Wayland the desktop asks
// the presenter in a dialog first.
func OpenContext(ctx context.Context) (*Injector, error) {
	sys, err := openInputSys(ctx)
	if err != nil {
		return nil, err
	}
	return &Injector{sys: sys, buttons: map[MouseButton]bool{}, keys: map[Key]bool{}}, nil
}

var errInputClosed = errors.New("input closed")

// ErrInvalid is wrapped by the errors for input refused before anything was
// sent (an unknown key or button, too many wheel notches, bad text): the
// desktop's input is fine.
var ErrInvalid = errors.New("invalid input")

// Area is the space Move's coordinates are in, where the desktop says so:
// on Wayland the remote-desktop session's screen, from (0, 0) in its logical
// pixels. It is empty where Move takes the desktop's own coordinates (X11,
// Windows, macOS).
func (in *Injector) Area() image.Rectangle {
	in.mu.Lock()
	defer in.mu.Unlock()
	if a, ok := any(in.sys).(interface{ area() image.Rectangle }); ok && in.sys != nil {
		return a.area()
	}
	return image.Rectangle{}
}

// Move puts the pointer at (x, y) in virtual-screen pixels: the X root
// window, the Windows virtual desktop, or macOS's global display space (in
// points, as the monitor bounds are there).
func (in *Injector) Move(x, y int) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return errInputClosed
	}
	if err := in.sys.move(x, y); err != nil {
		return fmt.Errorf("moving pointer to %d,%d: %w", x, y, err)
	}
	return nil
}

// Button presses (down) or releases a mouse button where the pointer is.
func (in *Injector) Button(b MouseButton, down bool) error {
	if err := checkButton(b); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return errInputClosed
	}
	if err := in.sys.button(b, down); err != nil {
		return fmt.Errorf("mouse button %d: %w", int(b), err)
	}
	in.buttons[b] = down
	return nil
}

// Scroll turns the wheel by whole notches: dy > 0 scrolls down, dx > 0 right.
func (in *Injector) Scroll(dx, dy int) error {
	const maxNotches = 100 // a bound on one call's work, far beyond any real wheel
	if dx < -maxNotches || dx > maxNotches || dy < -maxNotches || dy > maxNotches {
		return fmt.Errorf("%w: scrolling %d,%d: more than %d notches", ErrInvalid, dx, dy, maxNotches)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return errInputClosed
	}
	if err := in.sys.scroll(dx, dy); err != nil {
		return fmt.Errorf("scrolling %d,%d: %w", dx, dy, err)
	}
	return nil
}

// Key presses (down) or releases a named key. An unknown name is an error
// and sends nothing.
func (in *Injector) Key(k Key, down bool) error {
	c, err := lookupKey(k)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return errInputClosed
	}
	if err := in.sys.key(c, down); err != nil {
		return fmt.Errorf("key %q: %w", string(k), err)
	}
	in.keys[k] = down
	return nil
}

// Type types text, pressing and releasing a key for each character ("\n" is
// Enter, "\t" is Tab). Text with other control characters or invalid UTF-8
// is refused before anything is sent. The result depends on modifiers held
// at the time (Shift, Caps Lock), as it would for a real keyboard.
func (in *Injector) Type(text string) error {
	if err := checkText(text); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return errInputClosed
	}
	if err := in.sys.typeText(text); err != nil {
		return fmt.Errorf("typing text: %w", err)
	}
	return nil
}

// Close releases any button or key still held through this Injector, so a
// viewer that goes away mid-drag leaves no stuck button, and disconnects.
// Closing twice is fine.
func (in *Injector) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return nil
	}
	errs := in.releaseLocked()
	errs = append(errs, in.sys.close())
	in.sys = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing input: %w", err)
	}
	return nil
}

// ReleaseHeld lets go of every button and key still held through this
// Injector, and stays open: on Wayland a new session would mean the
// desktop's dialog again.
func (in *Injector) ReleaseHeld() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sys == nil {
		return nil
	}
	if err := errors.Join(in.releaseLocked()...); err != nil {
		return fmt.Errorf("releasing held input: %w", err)
	}
	return nil
}

// releaseLocked releases what is held; under in.mu.
func (in *Injector) releaseLocked() []error {
	var errs []error
	for b, down := range in.buttons {
		if down {
			errs = append(errs, in.sys.button(b, false))
			in.buttons[b] = false
		}
	}
	for k, down := range in.keys {
		if down {
			errs = append(errs, in.sys.key(keyCodes[k], false))
			in.keys[k] = false
		}
	}
	return errs
}

// keyCode is a key's code on each platform, so that every platform accepts
// the same names.
type keyCode struct {
	x11 uint32 // X keysym
	vk  uint16 // Windows virtual-key code
	ext bool   // Windows: needs KEYEVENTF_EXTENDEDKEY (else it is a keypad key)
	mac uint16 // macOS virtual key code (kVK_* in Carbon's Events.h)
}

var keyCodes = map[Key]keyCode{
	"Enter":      {x11: 0xff0d, vk: 0x0d, mac: 36},             // Return, VK_RETURN, kVK_Return
	"Backspace":  {x11: 0xff08, vk: 0x08, mac: 51},             // BackSpace, VK_BACK, kVK_Delete
	"Tab":        {x11: 0xff09, vk: 0x09, mac: 48},             // Tab, VK_TAB, kVK_Tab
	"Escape":     {x11: 0xff1b, vk: 0x1b, mac: 53},             // Escape, VK_ESCAPE, kVK_Escape
	"ArrowLeft":  {x11: 0xff51, vk: 0x25, ext: true, mac: 123}, // Left, VK_LEFT, kVK_LeftArrow
	"ArrowUp":    {x11: 0xff52, vk: 0x26, ext: true, mac: 126}, // Up, VK_UP, kVK_UpArrow
	"ArrowRight": {x11: 0xff53, vk: 0x27, ext: true, mac: 124}, // Right, VK_RIGHT, kVK_RightArrow
	"ArrowDown":  {x11: 0xff54, vk: 0x28, ext: true, mac: 125}, // Down, VK_DOWN, kVK_DownArrow
	"Delete":     {x11: 0xffff, vk: 0x2e, ext: true, mac: 117}, // Delete, VK_DELETE, kVK_ForwardDelete
	"Home":       {x11: 0xff50, vk: 0x24, ext: true, mac: 115}, // Home, VK_HOME, kVK_Home
	"End":        {x11: 0xff57, vk: 0x23, ext: true, mac: 119}, // End, VK_END, kVK_End
	"PageUp":     {x11: 0xff55, vk: 0x21, ext: true, mac: 116}, // Prior, VK_PRIOR, kVK_PageUp
	"PageDown":   {x11: 0xff56, vk: 0x22, ext: true, mac: 121}, // Next, VK_NEXT, kVK_PageDown
	"Shift":      {x11: 0xffe1, vk: 0xa0, mac: 56},             // Shift_L, VK_LSHIFT, kVK_Shift
	"Control":    {x11: 0xffe3, vk: 0xa2, mac: 59},             // Control_L, VK_LCONTROL, kVK_Control
	"Alt":        {x11: 0xffe9, vk: 0xa4, mac: 58},             // Alt_L, VK_LMENU, kVK_Option
	"Meta":       {x11: 0xffeb, vk: 0x5b, ext: true, mac: 55},  // Super_L, VK_LWIN, kVK_Command
	" ":          {x11: 0x0020, vk: 0x20, mac: 49},             // space, VK_SPACE, kVK_Space
}

func lookupKey(k Key) (keyCode, error) {
	c, ok := keyCodes[k]
	if !ok {
		return keyCode{}, fmt.Errorf("%w: unknown key %q", ErrInvalid, string(k))
	}
	return c, nil
}

func checkButton(b MouseButton) error {
	if b < ButtonLeft || b > ButtonRight {
		return fmt.Errorf("%w: unknown mouse button %d", ErrInvalid, int(b))
	}
	return nil
}

// checkText accepts text without control characters other than "\n" (sent
// as Enter) and "\t" (Tab), so that Type can refuse a string before sending
// any of it.
func checkText(text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: typing text: invalid UTF-8", ErrInvalid)
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("%w: typing text: control character %U", ErrInvalid, r)
		}
	}
	return nil
}
