package termqr_test

import (
	"bytes"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/deskcast/deskcast/internal/termqr"
	"github.com/deskcast/deskcast/internal/testenv"
)

// TestRenderDecodes draws URLs of several lengths in both styles, turns the
// text back into a picture and decodes it with a real QR decoder.
func TestRenderDecodes(t *testing.T) {
	token := "3f0c9a1be27d45c0a8d1f2e3b4c5d6e7"
	urls := []struct{ name, url string }{
		{"short", "http://10.0.0.2:8765/"},
		{"typical", "http://198.18.0.1:8080/?t=" + token},
		{"long host", "http://deskcast-presenter-laptop.conference-room.example.org:65535/?t=" + token},
		{"long token", "http://192.168.100.200:8765/?t=" + strings.Repeat(token, 4)},
		{"very long", "http://192.168.100.200:8765/?t=" + strings.Repeat(token, 12)},
	}
	styles := []struct {
		name  string
		style termqr.Style
	}{{"plain", termqr.Plain}, {"black on white", termqr.BlackOnWhite}}
	for _, u := range urls {
		for _, s := range styles {
			t.Run(u.name+"/"+s.name, func(t *testing.T) {
				out, err := termqr.Render(u.url, s.style)
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				checkShape(t, lines, s.style)
				got, img, err := testenv.TermQR(out)
				if err != nil {
					path := filepath.Join(t.TempDir(), "qr.png")
					if img != nil {
						var b bytes.Buffer
						_ = png.Encode(&b, img)
						_ = os.WriteFile(path, b.Bytes(), 0o644)
					}
					t.Fatalf("%v (%d lines; picture in %s):\n%s", err, len(lines), path, out)
				}
				if got != u.url {
					t.Fatalf("decoded %q, want %q", got, u.url)
				}
				if u.name == "typical" && s.style == termqr.Plain {
					t.Logf("a typical viewer URL: %d columns, %d lines", len([]rune(lines[0])), len(lines))
				}
			})
		}
	}
}

// checkShape checks that the lines form a rectangle of half blocks with a
// light border of termqr.QuietZone modules, and the style's escape codes.
func checkShape(t *testing.T, lines []string, s termqr.Style) {
	t.Helper()
	const pre, post = "\x1b[38;5;16;48;5;231m", "\x1b[0m"
	width := -1
	for i, l := range lines {
		if s == termqr.BlackOnWhite {
			if !strings.HasPrefix(l, pre) || !strings.HasSuffix(l, post) {
				t.Fatalf("line %d %q: want it between %q and %q", i, l, pre, post)
			}
			l = strings.TrimSuffix(strings.TrimPrefix(l, pre), post)
		}
		if strings.Contains(l, "\x1b") {
			t.Fatalf("line %d %q: escape codes", i, l)
		}
		if strings.Trim(l, " ▀▄█") != "" {
			t.Fatalf("line %d %q: not only half blocks and spaces", i, l)
		}
		r := []rune(l)
		if width == -1 {
			width = len(r)
		} else if len(r) != width {
			t.Fatalf("line %d is %d wide, line 0 %d", i, len(r), width)
		}
		// The border: QuietZone columns each side, QuietZone/2 lines above and below.
		q := termqr.QuietZone
		if strings.TrimSpace(string(r[:q])) != "" || strings.TrimSpace(string(r[len(r)-q:])) != "" ||
			(i < q/2 || i >= len(lines)-q/2) && strings.TrimSpace(l) != "" {
			t.Fatalf("line %d %q: ink in the quiet zone", i, l)
		}
	}
	if n := width; (n+1)/2 != len(lines) {
		t.Fatalf("%d lines for %d columns, want %d", len(lines), n, (n+1)/2)
	}
}

func TestRenderTooLong(t *testing.T) {
	// Version 40 holds 2331 bytes at medium error correction.
	if out, err := termqr.Render(strings.Repeat("x", 2400), termqr.Plain); err == nil {
		t.Fatalf("no error; drew %d bytes", len(out))
	}
}

// TestStyleFor checks which outputs get colour. /dev/null stands in for a
// terminal: both are character devices, which is what it looks at outside
// Windows.
func TestStyleFor(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	tests := []struct {
		name string
		w    io.Writer
		env  []string // name=value pairs to set
		want termqr.Style
	}{
		{"buffer", &bytes.Buffer{}, nil, termqr.Plain},
		{"file", f, nil, termqr.Plain},
		{"pipe", w, nil, termqr.Plain},
		{"terminal", tty, []string{"TERM=xterm-256color", "NO_COLOR="}, termqr.BlackOnWhite},
		{"terminal with NO_COLOR", tty, []string{"TERM=xterm-256color", "NO_COLOR=1"}, termqr.Plain},
		{"dumb terminal", tty, []string{"TERM=dumb", "NO_COLOR="}, termqr.Plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.w == tty && runtime.GOOS == "windows" {
				t.Skip("NUL is no console")
			}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			if s := termqr.StyleFor(tt.w); s != tt.want {
				t.Fatalf("style %d, want %d", s, tt.want)
			}
		})
	}
}
