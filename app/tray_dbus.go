package app

import (
	"runtime"

	"github.com/godbus/dbus/v5"
)

// TrayAvailable reports whether a tray icon can be shown. On Linux and the
// BSDs the tray talks D-Bus; without a session bus, fyne's tray makes
// app.Quit crash (fyne-io/fyne#6403), so the app then runs from its window.
func TrayAvailable() bool {
	switch runtime.GOOS {
	case "windows", "darwin":
		return true
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
