package app

import (
	"os"
	"path/filepath"
	"runtime"

	"github.com/godbus/dbus/v5"
)

// TrayAvailable reports whether a tray icon can be shown. On Linux and the
// BSDs the tray talks D-Bus; without a session bus, fyne's tray makes
// app.Quit crash (fyne-io/fyne#6403), so the app then runs from its window.
// It only dials a bus that exists: godbus would otherwise autolaunch one.
func TrayAvailable() bool {
	switch runtime.GOOS {
	case "windows", "darwin":
		return true
	}
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		sock := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "bus")
		if os.Getenv("XDG_RUNTIME_DIR") == "" {
			return false
		}
		if _, err := os.Stat(sock); err != nil {
			return false
		}
		addr = "unix:path=" + sock
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	return conn.Auth(nil) == nil && conn.Hello() == nil
}
