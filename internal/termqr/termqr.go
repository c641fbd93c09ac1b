// Package termqr draws a QR code as text for a terminal, with Unicode half
// blocks: one character cell holds two modules, one above the other, so the
// modules come out about square in a terminal's tall cells and a typical
// viewer URL takes some 41 columns and 21 lines.
package termqr

import (
	"fmt"
	"io"
	"os"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QuietZone is the light border around the code, in modules. It is the 4 the
// standard asks for, not the 2 that often does: a terminal puts text right
// above and below the code (a prompt, log lines), and with Plain the border is
// the terminal's own background, so a narrower one leaves a camera less to find
// the code's edges by. It costs 2 lines and 4 columns over a border of 2.
const QuietZone = 4

// Style says how Render draws the modules.
type Style int

const (
	// Plain draws the dark modules as ink (▀ ▄ █) and the light ones as spaces,
	// with no escape codes, for logs, files and pipes. It is dark on light
	// where text is dark on a light background; on a dark one it comes out
	// inverted, which many phone cameras read and some do not.
	Plain Style = iota
	// BlackOnWhite draws the same characters in black on a white background
	// with ANSI escape codes, one set per line and a reset before each line
	// break, so the code is dark on light whatever the terminal's theme. The
	// colours are 16 and 231 of the 256-colour palette, which are pure black
	// and white; themes redefine the first 16 colours (black and white among
	// them), not those.
	BlackOnWhite
)

const (
	blackOnWhite = "\x1b[38;5;16;48;5;231m"
	reset        = "\x1b[0m"
)

// Render draws text as a QR code with medium error correction (15% of it may
// be unreadable), in the smallest version that holds it, with a QuietZone
// border, as lines of half-block characters each ending in a line break.
func Render(text string, s Style) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("encoding the QR code: %w", err)
	}
	q.DisableBorder = true // the border is QuietZone's, added below
	bm := q.Bitmap()
	n := len(bm) + 2*QuietZone
	dark := func(x, y int) bool {
		x, y = x-QuietZone, y-QuietZone
		return y >= 0 && y < len(bm) && x >= 0 && x < len(bm[y]) && bm[y][x]
	}
	var b strings.Builder
	b.Grow((n + 1) / 2 * (3*n + len(blackOnWhite) + len(reset) + 1))
	// An odd number of rows leaves the last cell's lower half light: half a
	// module more of border.
	for y := 0; y < n; y += 2 {
		if s == BlackOnWhite {
			b.WriteString(blackOnWhite)
		}
		for x := range n {
			switch top, bottom := dark(x, y), dark(x, y+1); {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		if s == BlackOnWhite {
			// Reset before the line break: a terminal that scrolls with the
			// background colour set paints the whole new line with it.
			b.WriteString(reset)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// StyleFor picks the style for writing to w: BlackOnWhite when w is a terminal
// that takes ANSI escape codes (on Windows it turns their processing on for a
// console that has it off) and neither NO_COLOR (https://no-color.org) nor
// TERM=dumb asks for none, else Plain.
func StyleFor(w io.Writer) Style {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" || !ansiTerminal(f) {
		return Plain
	}
	return BlackOnWhite
}
