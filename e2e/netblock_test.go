package e2e

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// blockRules is the server namespace's nftables table for one case of
// TestWebRTCBlockedNetwork. With udp, every UDP packet in or out is dropped
// (WebRTC's media and its STUN checks, mDNS too). With iceTCP, so are the
// ICE-TCP connections to the HTTP port, which web/demux.go tells from HTTP
// by their first bytes: an RFC 4571 stream starts with a 2-byte length and
// a STUN header, whose magic cookie 0x2112A442 sits at bytes 6–9. @ih is
// the TCP payload, so the rule drops a connection's first data segment when
// it is that (and each retransmission of it): the STUN check never arrives
// and the connection carries nothing, while HTTP's segments, which start
// with text, pass. Either way the named counters count what matched.
func blockRules(port int, udp, iceTCP bool) string {
	verdict := func(block bool) string {
		if block {
			return "drop"
		}
		return "accept"
	}
	return fmt.Sprintf(`counter udp_packets {}
counter ice_tcp_stun {}
chain input {
	type filter hook input priority filter; policy accept;
	meta l4proto udp counter name udp_packets %[2]s
	tcp dport %[1]d @ih,48,32 0x2112a442 counter name ice_tcp_stun %[3]s
}
chain output {
	type filter hook output priority filter; policy accept;
	meta l4proto udp counter name udp_packets %[2]s
}`, port, verdict(udp), verdict(iceTCP))
}

// candidatePair is the page's selected ICE candidate pair, from getStats.
type candidatePair struct {
	Protocol string `json:"protocol"` // of the browser's candidate: "udp" or "tcp"
	Local    string `json:"local"`    // the browser's candidate type
	Remote   string `json:"remote"`   // the server's address:port
}

// selectedPair returns the page's selected candidate pair (zero before one is).
func selectedPair(t *testing.T, ctx context.Context) candidatePair {
	t.Helper()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[candidatePair](`(function () {
		var pc = window.deskcast.rtc.pc;
		if (!pc) return {};
		return pc.getStats().then(function (r) {
			var out = {};
			r.forEach(function (s) {
				if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
				var p = r.get(s.selectedCandidatePairId);
				var lc = r.get(p.localCandidateId), rc = r.get(p.remoteCandidateId);
				out = {protocol: lc.protocol, local: lc.candidateType, remote: rc.address + ':' + rc.port};
			});
			return out;
		});
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("reading the selected candidate pair: %v", err)
	}
	return p
}

// pageRTCStatus is the server's WebRTC status, fetched by the page (the test
// process is in another network namespace and cannot reach the server).
func pageRTCStatus(t *testing.T, ctx context.Context) rtcStatus {
	t.Helper()
	st, err := chromedp.Run(ctx, chromedp.Evaluate[rtcStatus](
		`fetch('/api/status', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (s) { return s.webrtc || {}; })`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching /api/status in the page: %v", err)
	}
	return st
}

// TestWebRTCBlockedNetwork runs the real binary in a network namespace of its
// own and headless Chromium in another, joined by a veth (198.18.0.0/30),
// with nftables in the server's namespace blocking WebRTC's media for real:
//   - nothing blocked: WebRTC over UDP;
//   - UDP blocked both ways: WebRTC over ICE-TCP, on the HTTP port;
//   - UDP and ICE-TCP blocked (HTTP still passes): the MJPEG picture within
//     ~3 s of opening the page, and the stats overlay says why.
//
// The rules' counters show that the media reached them (and was dropped).
func TestWebRTCBlockedNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root")
	}
	for _, p := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found: install iproute2 and nftables (scripts/deps.sh test does)", p)
		}
	}
	x := testenv.StartX(t, 640, 480)
	n := testenv.NewNet(t)
	l := n.AddViewers(t, "")
	fw := testenv.NewFirewall(t, n.Server, "deskcast_e2e")
	// The namespace is new: nothing else listens there, so the port is free.
	port := web.DefaultPort
	addr := fmt.Sprintf("%s:%d", l.ServerIP, port)
	startHeadlessIn(t, n.Server, "--listen", addr, "--token", token, "--mode", "screen", "--fps", "30", "--quality", "80")
	base := "http://" + addr

	for _, c := range []struct {
		name        string
		udp, iceTCP bool   // blocked
		want        string // the page's picture: over "udp", over "tcp", or "mjpeg"
	}{
		{"nothing blocked: WebRTC over UDP", false, false, "udp"},
		{"UDP blocked: WebRTC over ICE-TCP", true, false, "tcp"},
		{"UDP and ICE-TCP blocked: MJPEG", true, true, "mjpeg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			x.Fill(red)
			fw.Load(t, blockRules(port, c.udp, c.iceTCP))
			ctx := testenv.BrowserIn(t, l.NS, 800, 600)
			errs := consoleErrors(t, ctx)
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 600)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token)); err != nil {
				t.Fatal(err)
			}
			waitJS(t, ctx, 5*time.Second, "!!(window.deskcast.picture.status)")
			// Unlike the tests on loopback, no skip: this network is the
			// test's own, and WebRTC must be up on it.
			if w := eval[rtcStatus](t, ctx, "window.deskcast.picture.status.webrtc || {}"); !w.Available {
				t.Fatalf("the server offers no WebRTC: %+v", w)
			}
			defer func() {
				if t.Failed() {
					t.Logf("nftables in the server's namespace:\n%s", fw.Ruleset())
				}
			}()
			centre := fit(t, ctx, 640, 480)(320, 240)

			if c.want == "mjpeg" {
				// picture.js tries WebRTC, whose 3 s timer to a first frame
				// runs out, then opens the MJPEG stream.
				waitJS(t, ctx, 8*time.Second, mjpegShown)
				// The <img> has decoded an MJPEG frame by now (naturalWidth).
				d := time.Since(start)
				t.Logf("MJPEG picture %v after the page was opened", d.Round(time.Millisecond))
				if d > 5*time.Second {
					t.Errorf("MJPEG picture only %v after the page was opened, want about 3 s", d.Round(time.Millisecond))
				}
				waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: red})
				t.Logf("its colour in a screenshot %v after the page was opened", time.Since(start).Round(time.Millisecond))
				txt := waitStats(t, ctx, 3*time.Second, "transport  MJPEG (WebRTC: not connected within 3 s")
				t.Logf("stats overlay:\n%s", txt)
				x.Fill(blue)
				waitPage(t, ctx, 5*time.Second, map[image.Point]color.RGBA{centre: blue})
				// The failed session was ended (DELETE, over HTTP, which passes).
				deadline := time.Now().Add(5 * time.Second)
				for w := pageRTCStatus(t, ctx); w.Sessions != 0; w = pageRTCStatus(t, ctx) {
					if time.Now().After(deadline) {
						t.Fatalf("server's webrtc status %+v, want no session after the fallback", w)
					}
					time.Sleep(100 * time.Millisecond)
				}
			} else {
				waitJS(t, ctx, 8*time.Second, "window.deskcast.rtc.playing && !!document.getElementById('video')")
				t.Logf("first WebRTC frame %v after the page was opened", time.Since(start).Round(time.Millisecond))
				p := selectedPair(t, ctx)
				t.Logf("selected candidate pair: %+v", p)
				if p.Protocol != c.want || p.Remote == "" || !strings.HasPrefix(p.Remote, l.ServerIP+":") {
					t.Errorf("selected candidate pair %+v, want %s to %s", p, c.want, l.ServerIP)
				}
				if c.want == "tcp" && p.Remote != addr {
					t.Errorf("ICE-TCP to %s, want the HTTP port, %s", p.Remote, addr)
				}
				centreV := [][2]float64{{0.5, 0.5}}
				waitVideo(t, ctx, 5*time.Second, centreV, []color.RGBA{red})
				x.Fill(blue)
				d := waitVideo(t, ctx, 5*time.Second, centreV, []color.RGBA{blue})
				t.Logf("video showed the change %v after it (polling included)", d.Round(time.Millisecond))
				waitStats(t, ctx, 5*time.Second, "transport  WebRTC\n")
				if eval[bool](t, ctx, "!!document.getElementById('screen').getAttribute('src')") {
					t.Error("the MJPEG stream is open beside WebRTC")
				}
				if w := pageRTCStatus(t, ctx); w.Sessions != 1 {
					t.Errorf("server's webrtc status %+v, want 1 session", w)
				}
				// Leaving ends the session (DELETE), so the next case starts with none.
				if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
					t.Fatal(err)
				}
			}

			udp, ice := fw.Packets(t, "udp_packets"), fw.Packets(t, "ice_tcp_stun")
			t.Logf("nftables: %d UDP packets (%s), %d ICE-TCP STUN segments (%s)",
				udp, map[bool]string{true: "dropped", false: "passed"}[c.udp],
				ice, map[bool]string{true: "dropped", false: "passed"}[c.iceTCP])
			if udp == 0 {
				t.Error("no UDP packet met the rules: WebRTC's media never tried UDP")
			}
			if c.want != "udp" && ice == 0 {
				t.Error("no ICE-TCP segment met the rules: the payload match sees nothing")
			}
			noConsoleErrors(t, errs)
		})
	}
}
