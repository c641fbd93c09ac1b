package termqr

import (
	"os"

	"golang.org/x/sys/windows"
)

// ansiTerminal reports whether f is a console that takes ANSI escape codes,
// turning their processing on if it is off: the classic console host (conhost)
// of Windows 10 and later has it, off unless a program asks; Windows Terminal
// has it on. Older Windows refuses, and gets Plain.
func ansiTerminal(f *os.File) bool {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return false // not a console: a file, a pipe, or mintty's pty
	}
	if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
		return true
	}
	return windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING) == nil
}
