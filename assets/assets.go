// Package assets holds the files Deskcast ships inside its binary: the viewer
// page and its static files, and the app icon.
package assets

import (
	"embed"
	"io/fs"
)

//go:embed index.html static
var files embed.FS

// Viewer is the viewer page: index.html at the top and static/ beside it.
var Viewer fs.FS = files

// Icon is the app icon, a 256×256 PNG.
//
//go:embed static/icon.png
var Icon []byte
