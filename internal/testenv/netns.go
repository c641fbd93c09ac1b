package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
	subnet   string // the link's /30
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
		dev: fmt.Sprintf("vs%s%d", n.id, i), subnet: fmt.Sprintf("198.18.%d.0/30", i)}
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
	// IPv6 gives each end a link-local address that stays tentative for a
	// second or two of duplicate address detection, and such an address
	// cannot be bound yet: wait, so that a server started now can listen on
	// every address it finds (pion's UDP mux binds each one).
	settled(t, n.Server)
	settled(t, l.NS)
	return l
}

// settled waits until namespace ns has no tentative address left.
func settled(t testing.TB, ns string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", ns, "addr", "show", "tentative").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s addr show tentative: %v: %s", ns, err, out)
		}
		if len(strings.TrimSpace(string(out))) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("addresses in %s still tentative after 10 s:\n%s", ns, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Route makes the server namespace a router between links a and b: IPv4
// forwarding on there, and in each of a's and b's namespaces a route to the
// other link through it. Those two then reach each other and both of the
// server's addresses, still nothing beyond (no default route); a Firewall
// in the server's namespace (its forward hook) decides what crosses.
func (n *Net) Route(t testing.TB, a, b *Link) {
	t.Helper()
	run(t, "ip", "netns", "exec", n.Server, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, "ip", "-n", a.NS, "route", "add", b.subnet, "via", a.ServerIP)
	run(t, "ip", "-n", b.NS, "route", "add", a.subnet, "via", b.ServerIP)
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

// Firewall is one nftables table (family inet) in a namespace: real packet
// filtering, for tests of what gets through when something is blocked.
type Firewall struct {
	NS    string // the namespace the table is in
	Table string
}

// NewFirewall makes an empty table in namespace ns; it is deleted when the
// test ends (and would go with the namespace anyway). It needs root and nft
// (Debian's nftables package).
func NewFirewall(t testing.TB, ns, table string) *Firewall {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not found: install nftables (scripts/deps.sh test does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("nftables rules need root")
	}
	f := &Firewall{NS: ns, Table: table}
	f.Load(t, "")
	t.Cleanup(func() { _ = Command(ns, "nft", "delete", "table", "inet", table).Run() })
	return f
}

// Load replaces the table's contents with body (the chains, sets and
// counters inside `table inet NAME { … }`, in nft's syntax), in one
// transaction: no packet sees half of the old rules and half of the new.
func (f *Firewall) Load(t testing.TB, body string) {
	t.Helper()
	// Declaring the table first makes the delete valid when it does not exist yet.
	ruleset := fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\ntable inet %[1]s {\n%s\n}\n", f.Table, body)
	cmd := Command(f.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f in %s: %v: %s\nruleset:\n%s", f.NS, err, out, ruleset)
	}
}

// Packets returns what the table's named counter has counted.
func (f *Firewall) Packets(t testing.TB, counter string) uint64 {
	t.Helper()
	out, err := Command(f.NS, "nft", "list", "counter", "inet", f.Table, counter).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list counter %s: %v: %s", counter, err, out)
	}
	// "… counter NAME { packets 12 bytes 3456 } …"
	fields := strings.Fields(string(out))
	for i, w := range fields {
		if w == "packets" && i+1 < len(fields) {
			n, err := strconv.ParseUint(fields[i+1], 10, 64)
			if err != nil {
				t.Fatalf("nft counter %s: %q", counter, out)
			}
			return n
		}
	}
	t.Fatalf("nft counter %s: no packets in %q", counter, out)
	return 0
}

// Ruleset returns everything nft holds in the namespace, for a failure's log.
func (f *Firewall) Ruleset() string {
	out, _ := Command(f.NS, "nft", "list", "ruleset").CombinedOutput()
	return string(out)
}
