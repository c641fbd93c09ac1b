package rtc

import (
	"net"
	"testing"
)

func TestUsableIP(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"198.18.0.1", true},
		{"169.254.1.2", true}, // IPv4 link-local: bindable at once
		{"127.0.0.1", true},
		{"2001:db8::1", true},
		{"fd00::1", true},
		{"fe80::1", false},
		{"::1", true},
	} {
		if got := usableIP(net.ParseIP(tc.ip)); got != tc.want {
			t.Errorf("usableIP(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}
