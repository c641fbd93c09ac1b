package testenv

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SessionBus starts a private D-Bus session bus for the test, sets
// DBUS_SESSION_BUS_ADDRESS to it and stops it when the test ends.
func SessionBus(t testing.TB) string {
	t.Helper()
	Need(t, "dbus-daemon")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", a)
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start within 10 s")
	}
	return ""
}
