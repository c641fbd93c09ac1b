package portal

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

const remoteIf = "org.freedesktop.portal.RemoteDesktop"

// The remote-desktop portal's device types (bit flags).
const (
	DeviceKeyboard = 1
	DevicePointer  = 2
)

// RemoteAvailable reports whether the session bus has a remote-desktop
// portal that can reach the keyboard and the pointer, and if not, why.
func RemoteAvailable() error {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return fmt.Errorf("%w: connecting to the session bus: %w", ErrUnavailable, err)
	}
	defer conn.Close()
	v, err := conn.Object(busName, objectPath).GetProperty(remoteIf + ".AvailableDeviceTypes")
	if err != nil {
		return fmt.Errorf("%w: no remote-desktop portal: %w", ErrUnavailable, err)
	}
	if t, _ := v.Value().(uint32); t&(DeviceKeyboard|DevicePointer) != DeviceKeyboard|DevicePointer {
		return fmt.Errorf("%w: the remote-desktop portal offers no keyboard and pointer (devices %d)", ErrUnavailable, t)
	}
	return nil
}

// selectDevices asks for opt.Devices, and for the permission to last where
// the portal keeps it (version 2).
func (s *Session) selectDevices(ctx context.Context, opt Options) error {
	sel := map[string]dbus.Variant{"types": dbus.MakeVariant(opt.Devices)}
	if v, err := s.conn.Object(busName, objectPath).GetProperty(remoteIf + ".version"); err == nil {
		if n, _ := v.Value().(uint32); n >= 2 {
			sel["persist_mode"] = dbus.MakeVariant(uint32(persistUntilRevoked))
			if opt.RestoreToken != "" {
				sel["restore_token"] = dbus.MakeVariant(opt.RestoreToken)
			}
		}
	}
	if _, err := s.request(ctx, remoteIf+".SelectDevices", func(tok string) []any {
		sel["handle_token"] = dbus.MakeVariant(tok)
		return []any{s.handle, sel}
	}, nil); err != nil {
		return fmt.Errorf("asking for the keyboard and pointer: %w", err)
	}
	return nil
}

// notify calls one of the remote-desktop Notify methods on the session.
func (s *Session) notify(method string, args ...any) error {
	args = append([]any{s.handle, map[string]dbus.Variant{}}, args...)
	if err := s.call(objectPath, remoteIf+"."+method, args...).Err; err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// MoveTo puts the pointer at (x, y) in the first stream's logical pixels.
func (s *Session) MoveTo(x, y float64) error {
	if len(s.Streams) == 0 {
		return fmt.Errorf("%w: no stream to place the pointer on", ErrDenied)
	}
	return s.notify("NotifyPointerMotionAbsolute", s.Streams[0].NodeID, x, y)
}

// MoveBy moves the pointer by (dx, dy) logical pixels.
func (s *Session) MoveBy(dx, dy float64) error {
	return s.notify("NotifyPointerMotion", dx, dy)
}

// Button presses or releases a pointer button, by its Linux evdev code
// (BTN_LEFT is 0x110).
func (s *Session) Button(code int32, down bool) error {
	return s.notify("NotifyPointerButton", code, state(down))
}

// Scroll turns the wheel by whole steps: axis 0 is vertical (positive
// down), 1 horizontal (positive right).
func (s *Session) Scroll(axis uint32, steps int32) error {
	return s.notify("NotifyPointerAxisDiscrete", axis, steps)
}

// Keysym presses or releases the key of an X keysym.
func (s *Session) Keysym(sym int32, down bool) error {
	return s.notify("NotifyKeyboardKeysym", sym, state(down))
}

func state(down bool) uint32 {
	if down {
		return 1
	}
	return 0
}
