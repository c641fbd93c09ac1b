package app

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/deskcast/deskcast/engine"
)

// TestExposureInWindow: the window says which addresses the share can be
// reached on (every one, IPv6 included, when listening on all interfaces;
// only this computer on a loopback address) and when the port asked for was
// busy, which one is used instead.
func TestExposureInWindow(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	var lan []string // what the machine has besides loopback
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				lan = append(lan, ipn.IP.String())
			}
		}
	}

	tests := []struct {
		name, listen string
		want         []string // in the window's text
		not          []string
	}{
		{"local, port busy", fmt.Sprintf("127.0.0.1:%d", busyPort),
			[]string{fmt.Sprintf("Port %d is busy, so Deskcast uses port %d.", busyPort, busyPort+1), "Only this computer can watch"},
			append([]string{"Reachable on"}, lan...)},
		{"all interfaces", ":0", append([]string{"Reachable on"}, lan...), []string{"is busy", "Only this computer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.listen == ":0" && len(lan) == 0 {
				t.Skip("this machine has no address besides loopback")
			}
			fa := test.NewTempApp(t)
			s := engine.Defaults()
			s.Listen = tc.listen
			eng, err := engine.New(s, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(eng.Stop)
			a := New(fa, eng, fakeDevices, Options{})
			a.Start()
			if eng.Server() == nil {
				t.Fatal("not sharing after Start")
			}
			a.refresh()
			got := a.win.exposure.Text
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("window says %q; want it to say %q", got, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("window says %q; it should not say %q", got, w)
				}
			}
		})
	}
}
