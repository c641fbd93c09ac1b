package web

import (
	"errors"

	"golang.org/x/sys/windows"
)

// Winsock reports WSAEADDRINUSE, which syscall.EADDRINUSE does not match on Windows.
func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }
