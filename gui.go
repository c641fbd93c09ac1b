package main

import (
	"context"
	"os"
	"runtime"

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
func runGUI(ctx context.Context, e *engine.Engine, start bool, given map[string]bool) error {
	deskapp.Main(ctx, e, deskapp.Options{Tray: true, StartShare: start, Given: given})
	return nil
}
