//go:build windows

package input

import (
	"context"
	"fmt"
	"syscall"
	"unicode/utf16"
	"unsafe"
)

var (
	user32               = syscall.NewLazyDLL("user32.dll")
	procSendInput        = user32.NewProc("SendInput")
	procGetSystemMetrics = user32.NewProc("GetSystemMetrics")
)

const (
	inputMouse    = 0
	inputKeyboard = 1

	mouseeventfMove        = 0x0001
	mouseeventfLeftDown    = 0x0002
	mouseeventfLeftUp      = 0x0004
	mouseeventfRightDown   = 0x0008
	mouseeventfRightUp     = 0x0010
	mouseeventfMiddleDown  = 0x0020
	mouseeventfMiddleUp    = 0x0040
	mouseeventfWheel       = 0x0800
	mouseeventfHWheel      = 0x1000
	mouseeventfVirtualDesk = 0x4000
	mouseeventfAbsolute    = 0x8000

	keyeventfExtendedKey = 0x0001
	keyeventfKeyUp       = 0x0002
	keyeventfUnicode     = 0x0004

	wheelDelta = 120

	smXVirtualScreen  = 76
	smYVirtualScreen  = 77
	smCXVirtualScreen = 78
	smCYVirtualScreen = 79

	vkReturn = 0x0d
	vkTab    = 0x09
)

// mouseInput is MOUSEINPUT, the largest member of INPUT's union.
type mouseInput struct {
	dx, dy    int32
	mouseData uint32
	flags     uint32
	time      uint32
	extraInfo uintptr
}

// keybdInput is KEYBDINPUT; it fits in mouseInput's place.
type keybdInput struct {
	vk, scan  uint16
	flags     uint32
	time      uint32
	extraInfo uintptr
}

// winInput is INPUT: 40 bytes on 64-bit Windows, 28 on 32-bit.
type winInput struct {
	typ   uint32
	mouse mouseInput
}

func mouseEvent(flags uint32, dx, dy int32, data uint32) winInput {
	return winInput{typ: inputMouse, mouse: mouseInput{dx: dx, dy: dy, mouseData: data, flags: flags}}
}

func keyEvent(vk, scan uint16, flags uint32) winInput {
	in := winInput{typ: inputKeyboard}
	*(*keybdInput)(unsafe.Pointer(&in.mouse)) = keybdInput{vk: vk, scan: scan, flags: flags}
	return in
}

// inputSys injects events with SendInput. Injector's mutex guards it.
type inputSys struct{}

func controlAvailable() error {
	if err := procSendInput.Find(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func openInputSys(context.Context) (*inputSys, error) {
	if err := controlAvailable(); err != nil {
		return nil, err
	}
	return &inputSys{}, nil
}

// send hands events to SendInput, which refuses them (without saying why)
// when the foreground window belongs to a more privileged process or the
// desktop is locked.
func send(events ...winInput) error {
	if len(events) == 0 {
		return nil
	}
	n, _, err := procSendInput.Call(uintptr(len(events)), uintptr(unsafe.Pointer(&events[0])), unsafe.Sizeof(events[0]))
	if int(n) == len(events) {
		return nil
	}
	why := "blocked by a more privileged window or a locked desktop?"
	if errno, ok := err.(syscall.Errno); ok && errno != 0 {
		why = errno.Error()
	}
	return fmt.Errorf("SendInput took %d of %d events: %s", n, len(events), why)
}

func systemMetric(i int) int {
	v, _, _ := procGetSystemMetrics.Call(uintptr(i))
	return int(int32(v))
}

func (s *inputSys) move(x, y int) error {
	vx, vy := systemMetric(smXVirtualScreen), systemMetric(smYVirtualScreen)
	vw, vh := systemMetric(smCXVirtualScreen), systemMetric(smCYVirtualScreen)
	if vw <= 0 || vh <= 0 {
		return fmt.Errorf("virtual screen is %dx%d", vw, vh)
	}
	// Windows maps 0..65535 onto the virtual desktop; aim at the pixel's centre.
	norm := func(p, origin, size int) int32 {
		v := (int64(p-origin)*2 + 1) * 65536 / (int64(size) * 2)
		return int32(min(max(v, 0), 65535))
	}
	return send(mouseEvent(mouseeventfMove|mouseeventfAbsolute|mouseeventfVirtualDesk,
		norm(x, vx, vw), norm(y, vy, vh), 0))
}

func (s *inputSys) button(b MouseButton, down bool) error {
	var flags uint32
	switch b {
	case ButtonLeft:
		flags = mouseeventfLeftDown
	case ButtonMiddle:
		flags = mouseeventfMiddleDown
	case ButtonRight:
		flags = mouseeventfRightDown
	}
	if !down {
		flags <<= 1 // each button's up flag follows its down flag
	}
	return send(mouseEvent(flags, 0, 0, 0))
}

func (s *inputSys) scroll(dx, dy int) error {
	var events []winInput
	if dy != 0 {
		// Positive wheel data scrolls away from the user, i.e. up.
		events = append(events, mouseEvent(mouseeventfWheel, 0, 0, uint32(int32(-dy*wheelDelta))))
	}
	if dx != 0 {
		events = append(events, mouseEvent(mouseeventfHWheel, 0, 0, uint32(int32(dx*wheelDelta))))
	}
	return send(events...)
}

func (s *inputSys) key(c keyCode, down bool) error {
	var flags uint32
	if c.ext {
		flags |= keyeventfExtendedKey
	}
	if !down {
		flags |= keyeventfKeyUp
	}
	return send(keyEvent(c.vk, 0, flags))
}

func (s *inputSys) typeText(text string) error {
	var events []winInput
	for _, r := range text {
		switch r {
		case '\n', '\t':
			vk := uint16(vkReturn)
			if r == '\t' {
				vk = vkTab
			}
			events = append(events, keyEvent(vk, 0, 0), keyEvent(vk, 0, keyeventfKeyUp))
			continue
		}
		// KEYEVENTF_UNICODE sends UTF-16 code units as VK_PACKET; a character
		// outside the BMP goes as its two surrogates.
		for _, u := range utf16.Encode([]rune{r}) {
			events = append(events, keyEvent(0, u, keyeventfUnicode), keyEvent(0, u, keyeventfUnicode|keyeventfKeyUp))
		}
	}
	return send(events...)
}

func (s *inputSys) close() error { return nil }
