package access_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
)

const pin = "4821"

// User-Agents as real browsers send them.
const (
	uaChromeAndroid  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaFirefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
)

func TestBrowserName(t *testing.T) {
	cases := []struct{ name, ua, want string }{
		{"Chrome on Android", uaChromeAndroid, "Chrome on Android"},
		{"Safari on iPhone", uaSafariIPhone, "Safari on iPhone"},
		{"Firefox on Windows", uaFirefoxWindows, "Firefox on Windows"},
		{"Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"},
		{"Edge on Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.0.0", "Edge on Android"},
		{"Samsung Internet", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"HeadlessChrome on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
		{"Chrome on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Firefox on iPad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", "Firefox on iPad"},
		{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Chrome on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on macOS"},
		{"Chrome on ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Opera on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "Opera on Windows"},
		{"Firefox on Linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on Linux"},
		{"curl", "curl/8.5.0", "curl"},
		{"VLC", "VLC/3.0.20 LibVLC/3.0.20", "VLC"},
		{"ffmpeg", "Lavf/60.16.100", "ffmpeg"},
		{"unknown browser on Linux", "Mozilla/5.0 (X11; Linux x86_64) Whatever/1.0", "browser on Linux"},
		{"empty", "", "unknown client"},
		{"garbage", "\x00\xff<script>alert(1)</script>", "other client"},
		{"long garbage", strings.Repeat("\xfe~", 10000), "other client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := access.BrowserName(tc.ua); got != tc.want {
				t.Errorf("BrowserName(%.80q) = %q, want %q", tc.ua, got, tc.want)
			}
		})
	}
}

func TestValidPIN(t *testing.T) {
	cases := []struct {
		pin string
		ok  bool
	}{
		{"", false},
		{"123", false},
		{"1234", true},
		{"0000", true},
		{"123456789012", true},
		{"1234567890123", false},
		{"12a4", false},
		{" 1234", false},
		{"1234 ", false},
		{"-123", false},
		{"12.4", false},
		{"+1234", false},
		{"１２３４", false}, // full-width digits
		{"١٢٣٤", false}, // Arabic-Indic digits
		{"12\x0034", false},
	}
	for _, tc := range cases {
		if err := access.ValidPIN(tc.pin); (err == nil) != tc.ok {
			t.Errorf("ValidPIN(%q) = %v, want ok=%v", tc.pin, err, tc.ok)
		}
	}
}

func TestParseApproval(t *testing.T) {
	cases := []struct {
		in   string
		want access.Approval
		ok   bool
	}{
		{"", access.ApproveOff, true},
		{"off", access.ApproveOff, true},
		{"false", access.ApproveOff, true},
		{"no", access.ApproveOff, true},
		{"OFF", access.ApproveOff, true},
		{"ask", access.ApproveAsk, true},
		{"true", access.ApproveAsk, true},
		{"yes", access.ApproveAsk, true},
		{"on", access.ApproveAsk, true},
		{"Ask", access.ApproveAsk, true},
		{"auto", access.ApproveAuto, true},
		{"AUTO", access.ApproveAuto, true},
		{"maybe", "", false},
		{" ask", "", false},
		{"asks", "", false},
		{"1", "", false},
	}
	for _, tc := range cases {
		got, err := access.ParseApproval(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseApproval(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestAccessValidate(t *testing.T) {
	cases := []struct {
		name string
		acc  access.Access
		ok   bool
	}{
		{"zero", access.Access{}, true},
		{"PIN", access.Access{PIN: pin}, true},
		{"12-digit PIN", access.Access{PIN: "123456789012"}, true},
		{"short PIN", access.Access{PIN: "12"}, false},
		{"long PIN", access.Access{PIN: "1234567890123"}, false},
		{"PIN with letters", access.Access{PIN: "abcd"}, false},
		{"PIN with a space", access.Access{PIN: " 4821"}, false},
		{"ask", access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Second}, true},
		{"auto", access.Access{Approve: access.ApproveAuto}, true},
		{"unknown approval", access.Access{Approve: "maybe"}, false},
		{"no limit", access.Access{MaxViewers: -1}, true},
		{"limit", access.Access{MaxViewers: 3}, true},
		{"negative limit", access.Access{MaxViewers: -2}, false},
		{"everything", access.Access{PIN: pin, Approve: access.ApproveAsk, ApproveTimeout: time.Minute, MaxViewers: 5}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.acc.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.acc, err, tc.ok)
			}
		})
	}
}
