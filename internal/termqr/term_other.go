//go:build !windows

package termqr

import "os"

// ansiTerminal reports whether f is a terminal; every terminal Deskcast runs in
// outside Windows takes ANSI escape codes. A character device that is not a
// terminal, such as /dev/null, counts as one, and loses nothing by it.
func ansiTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
