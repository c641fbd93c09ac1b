package main

import (
	"context"
	"os"

	"github.com/deskcast/deskcast/engine"
)

// guiAvailable reports whether a window can be opened here.
func guiAvailable() bool { return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" }

// runGUI runs the desktop app. Until it lands, sharing runs headless.
func runGUI(ctx context.Context, e *engine.Engine) error { return e.RunHeadless(ctx, os.Stdout) }
