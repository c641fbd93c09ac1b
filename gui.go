package main

import (
	"context"
	"os"
	"runtime"

	fyneapp "fyne.io/fyne/v2/app"

	deskapp "github.com/deskcast/deskcast/app"
	"github.com/deskcast/deskcast/engine"
)

// guiAvailable reports whether a window can be opened here.
func guiAvailable() bool {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// runGUI runs the desktop app until Quit or until ctx ends.
func runGUI(ctx context.Context, e *engine.Engine, start bool) error {
	fa := fyneapp.NewWithID("io.deskcast.Deskcast")
	a := deskapp.New(fa, e, deskapp.SystemDevices, deskapp.Options{Tray: deskapp.TrayAvailable(), StartShare: start})
	a.Run(ctx)
	return nil
}
