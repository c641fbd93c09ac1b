package testenv_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// TestMain lets the test binary run again inside a namespace as a helper:
// NETNS_HELPER=recv:ADDR counts what arrives for 2 s and prints it;
// NETNS_HELPER=send:ADDR sends zeros for 3 s.
func TestMain(m *testing.M) {
	if h := os.Getenv("NETNS_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(h string) int {
	what, addr, _ := strings.Cut(h, ":")
	switch what {
	case "recv":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("ready")
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		io.CopyN(io.Discard, c, 256<<10) // past tbf's initial burst
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		fmt.Println(n)
		return 0
	case "send":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 1
		}
		_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 32<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return 0
			}
		}
	}
	return 2
}

// TestNetRate: a link limited to 8 Mbit/s carries about that much from the
// server's namespace to the viewers'.
func TestNetRate(t *testing.T) {
	n := testenv.NewNet(t)
	l := n.AddViewers(t, "8mbit")
	addr := l.ViewerIP + ":5001"
	recv := testenv.Command(l.NS, os.Args[0])
	recv.Env = append(os.Environ(), "NETNS_HELPER=recv:"+addr)
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Process.Kill()
	var ready string
	fmt.Fscanln(out, &ready)
	if ready != "ready" {
		t.Fatalf("receiver: %q", ready)
	}
	send := testenv.Command(n.Server, os.Args[0])
	send.Env = append(os.Environ(), "NETNS_HELPER=send:"+addr)
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	defer send.Wait()
	var got string
	fmt.Fscanln(out, &got)
	bytes, err := strconv.Atoi(got)
	if err != nil {
		t.Fatalf("receiver said %q", got)
	}
	mbit := float64(bytes) * 8 / 2 / 1e6
	t.Logf("8mbit link carried %.2f Mbit/s", mbit)
	if mbit < 6 || mbit > 9 {
		t.Fatalf("8mbit link carried %.2f Mbit/s, want about 8", mbit)
	}
	// Nothing but these namespaces: the viewers' side has no route out.
	if err := testenv.Command(l.NS, "ip", "route", "get", "1.1.1.1").Run(); err == nil {
		t.Fatal("the viewers' namespace has a route off the machine")
	}
}
