package testenv

import (
	"context"
	"os/exec"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

// BrowserIn starts headless Chromium as Browser does, but inside the network
// namespace ns (a Link's NS): it sees only that namespace's network, as a
// browser on another computer would. chromedp drives it over the DevTools
// pipe (file descriptors 3 and 4, which `ip netns exec` passes on), so no
// debugging port has to be reached across namespaces.
func BrowserIn(t testing.TB, ns string, w, h int) context.Context {
	t.Helper()
	Need(t, "ip")
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(browserOptions(t, w, h), chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		// ip execs chromium in place, so the process chromedp waits for and
		// kills is the browser itself.
		cmd.Args = append([]string{ip, "netns", "exec", ns}, cmd.Args...)
		cmd.Path = ip
		// As chromedp's own default: the browser dies with the test binary.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}))
	return startBrowser(t, opts)
}
