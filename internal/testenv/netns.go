package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Net is a small network of namespaces on this machine, for tests of what
// crosses a real network: a server namespace and viewer namespaces, each
// joined to the server by its own veth pair whose server side is rate
// limited with tbf (this kernel has no netem, so no delay or loss). Every
// address is from 198.18.0.0/15, the benchmarking range, and lives only
// inside these namespaces; nothing leaves the machine.
type Net struct {
	Server string // the server's namespace
	id     string
	links  int
}

var netSeq atomic.Int32

// NewNet makes the server namespace; it and everything added to it are
// removed when the test ends. It needs root, ip and tc.
func NewNet(t testing.TB) *Net {
	t.Helper()
	Need(t, "ip", "tc")
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	n := &Net{id: fmt.Sprintf("%d%d", os.Getpid()%10000, netSeq.Add(1))}
	n.Server = "dcs" + n.id
	run(t, "ip", "netns", "add", n.Server)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.Server).Run() })
	run(t, "ip", "-n", n.Server, "link", "set", "lo", "up")
	return n
}

// Link is one viewer namespace and its link to the server.
type Link struct {
	NS       string // the viewers' namespace
	ServerIP string // the server's address as seen from NS
	ViewerIP string // NS's address
	dev      string // the server side of the veth, where tbf shapes what the server sends
}

// AddViewers makes a viewer namespace whose link carries rate from the
// server (tc's syntax, e.g. "100mbit"; "" for no limit).
func (n *Net) AddViewers(t testing.TB, rate string) *Link {
	t.Helper()
	i := n.links
	n.links++
	if i > 250 {
		t.Fatal("testenv: at most 250 links")
	}
	l := &Link{NS: fmt.Sprintf("dcv%s-%d", n.id, i),
		// 198.18.i.0/30 for link i: .1 the server, .2 the viewers.
		ServerIP: fmt.Sprintf("198.18.%d.1", i), ViewerIP: fmt.Sprintf("198.18.%d.2", i),
		dev: fmt.Sprintf("vs%s%d", n.id, i)}
	peer := fmt.Sprintf("vv%s%d", n.id, i)
	run(t, "ip", "netns", "add", l.NS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.NS).Run() })
	run(t, "ip", "-n", l.NS, "link", "set", "lo", "up")
	run(t, "ip", "link", "add", l.dev, "netns", n.Server, "type", "veth", "peer", "name", peer, "netns", l.NS)
	run(t, "ip", "-n", n.Server, "addr", "add", l.ServerIP+"/30", "dev", l.dev)
	run(t, "ip", "-n", l.NS, "addr", "add", l.ViewerIP+"/30", "dev", peer)
	run(t, "ip", "-n", n.Server, "link", "set", l.dev, "up")
	run(t, "ip", "-n", l.NS, "link", "set", peer, "up")
	if rate != "" {
		l.SetRate(t, n, rate)
	}
	return l
}

// SetRate changes what the link carries from the server.
func (l *Link) SetRate(t testing.TB, n *Net, rate string) {
	t.Helper()
	// A burst of at least a few full-size packets, and a queue of at most
	// ~50 ms at the rate: like a Wi-Fi access point's, not a bufferbloated modem's.
	run(t, "ip", "netns", "exec", n.Server, "tc", "qdisc", "replace", "dev", l.dev, "root",
		"tbf", "rate", rate, "burst", "64kb", "latency", "50ms")
}

// Command runs name inside namespace ns.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
