package rtc_test

// TestPublishThroughTURN: a publisher that reaches the media server's
// media only through a TURN server, on real links between network
// namespaces. The test binary runs twice more: as the TURN server in the
// gateway's namespace, and as the publishing side in the publisher's.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/rtc"
)

const (
	// turnServerEnv makes the test binary a TURN server (turnServer); its
	// value is the turnSide as JSON.
	turnServerEnv = "DESKCAST_TEST_TURN_SERVER"
	// turnPublisherEnv makes TestPublishThroughTURN the publishing side
	// (publishThroughTURN); its value is the turnSide as JSON.
	turnPublisherEnv = "DESKCAST_TEST_TURN_PUBLISHER"
	turnPort         = 3478
)

// turnSide is what the helpers need to know of the test's network.
type turnSide struct {
	TURNIP  string `json:"turn_ip"`  // the TURN server's address (on MediaMTX's link), which it relays from
	MediaNS string `json:"media_ns"` // MediaMTX's namespace
	MediaIP string `json:"media_ip"`
	HostIP  string `json:"host_ip"` // the publisher's own address
	User    string `json:"user"`    // the TURN server's one user
	Pass    string `json:"pass"`
}

// url is the TURN server's URL, as MediaMTX names it in its Link headers.
func (s turnSide) url() string { return fmt.Sprintf("turn:%s:%d?transport=udp", s.TURNIP, turnPort) }

// init runs the TURN server instead of the tests when the test started
// this binary as one (before TestMain and its leak check).
func init() {
	if cfg := os.Getenv(turnServerEnv); cfg != "" {
		os.Exit(turnServer(cfg, os.Stdout))
	}
}

// turnServer runs pion's TURN server on UDP port turnPort of cfg's TURNIP,
// relaying from the same address, until it is killed; it writes "ready"
// once it listens.
func turnServer(cfg string, out io.Writer) int {
	var side turnSide
	if err := json.Unmarshal([]byte(cfg), &side); err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	// On its address, not on every one: a reply from a socket bound to
	// 0.0.0.0 leaves from the address of the interface towards the client
	// (the gateway's on the publisher's link), and a TURN client takes only
	// what comes from the server's address.
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(side.TURNIP, fmt.Sprint(turnPort)))
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	const realm = "deskcast"
	key := turn.GenerateAuthKey(side.User, realm, side.Pass)
	s, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == side.User
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP(side.TURNIP), Address: side.TURNIP}}},
	})
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	_ = s // it serves until the process is killed
	fmt.Fprintln(out, "ready")
	select {}
}

// turnRules is the gateway's nftables table: it forwards TCP between the
// publisher's and MediaMTX's links (WHIP, WHEP, the API) and drops every
// UDP packet it would forward, so the media can only go through the TURN
// server, which is the gateway itself. The counters count both.
const turnRules = `counter udp_forwarded {}
counter tcp_forwarded {}
chain forward {
	type filter hook forward priority filter; policy accept;
	meta l4proto udp counter name udp_forwarded drop
	meta l4proto tcp counter name tcp_forwarded accept
}`

// TestPublishThroughTURN publishes to a real MediaMTX that the publisher
// can reach over TCP (WHIP) but not over UDP, except through a TURN server
// that MediaMTX names in its Link headers:
//
//	publisher (198.18.0.2) ── gateway: TURN, forwards TCP only ── MediaMTX (198.18.1.2)
//
// Three network namespaces joined by veths; the gateway's nftables drop all
// UDP it would forward. The publisher must gather a relay candidate from the
// servers of MediaMTX's answer to OPTIONS, select a pair with it (its status
// and MediaMTX's API both say relay), and a WHEP reader on MediaMTX, itself
// behind the same gateway, must decode the picture. The TURN credentials
// show in no status and no log line.
func TestPublishThroughTURN(t *testing.T) {
	if cfg := os.Getenv(turnPublisherEnv); cfg != "" {
		publishThroughTURN(t, cfg)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root")
	}
	for _, p := range []string{"ip", "nft", "sysctl"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found: install iproute2, nftables and procps (scripts/deps.sh test does)", p)
		}
	}
	n := testenv.NewNet(t) // the gateway
	pub := n.AddViewers(t, "")
	media := n.AddViewers(t, "")
	n.Route(t, pub, media)
	fw := testenv.NewFirewall(t, n.Server, "deskcast_turn")
	fw.Load(t, turnRules)
	side := turnSide{TURNIP: media.ServerIP, MediaNS: media.NS, MediaIP: media.ViewerIP, HostIP: pub.ViewerIP,
		User: "deskcast", Pass: rand.Text()}
	cfg, err := json.Marshal(side)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startTURN(t, n.Server, exe, string(cfg))

	child := testenv.Command(pub.NS, exe, "-test.run=^TestPublishThroughTURN$", "-test.v", "-test.count=1", "-test.timeout=3m")
	child.Env = append(os.Environ(), turnPublisherEnv+"="+string(cfg))
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := child.CombinedOutput()
	t.Logf("the publishing side, in %s:\n%s", pub.NS, out)
	if err != nil {
		t.Fatalf("the publishing side failed: %v\nthe gateway's rules:\n%s", err, fw.Ruleset())
	}
	if !bytes.Contains(out, []byte("--- PASS: TestPublishThroughTURN")) {
		t.Skip("the publishing side skipped")
	}
	// The direct path was tried (the publisher's host candidate and
	// MediaMTX's checks) and dropped; WHIP went through.
	udp, tcp := fw.Packets(t, "udp_forwarded"), fw.Packets(t, "tcp_forwarded")
	t.Logf("the gateway dropped %d UDP packets between the two links and forwarded %d TCP packets", udp, tcp)
	if udp == 0 || tcp == 0 {
		t.Errorf("the gateway dropped %d UDP packets and forwarded %d TCP ones; want some of each", udp, tcp)
	}
}

// startTURN runs the test binary as the TURN server in namespace ns until
// the test ends.
func startTURN(t *testing.T, ns, exe, cfg string) {
	t.Helper()
	cmd := testenv.Command(ns, exe) // ip execs the binary in place: the process is the server
	cmd.Env = append(os.Environ(), turnServerEnv+"="+cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatalf("starting the TURN server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("the TURN server: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the TURN server did not start within 10 s")
	}
}

// publishThroughTURN is TestPublishThroughTURN's publishing side, run in
// the publisher's namespace.
func publishThroughTURN(t *testing.T, cfg string) {
	var side turnSide
	if err := json.Unmarshal([]byte(cfg), &side); err != nil {
		t.Fatal(err)
	}
	// Every log line, pion's debug messages included, to look for the
	// credentials in.
	logs := &lockedBuffer{}
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	mtx := testenv.MediaMTXWith(t, testenv.MediaMTXOptions{NS: side.MediaNS, Host: side.MediaIP,
		ICEServers: []testenv.MediaMTXICEServer{{URL: side.url(), User: side.User, Pass: side.Pass}}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Deskcast's log but pion's debug lines:\n%s\nMediaMTX's last lines:\n%s", notDebug(logs.String()), mtx.Output())
		}
	})
	f := newFixture(t, nil)
	ctx := context.Background()

	rec := &httpRecorder{}
	p, err := f.srv.Publish(rtc.PublishOptions{URL: mtx.WHIPURL("deskcast"), Token: mtx.Token(),
		HTTP: &http.Client{Transport: rec, Timeout: 10 * time.Second}, Retry: 200 * time.Millisecond, MaxRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := waitPublish(t, p, rtc.PublishLive, 30*time.Second)
	t.Logf("live after %d attempt(s): %+v", st.Attempts, st)

	// The servers came with the answer to OPTIONS, before the offer, and
	// the offer has a relay candidate from the TURN server beside the host's.
	calls := rec.calls()
	if len(calls) < 2 || calls[0].method != http.MethodOptions || calls[0].status != http.StatusNoContent ||
		!strings.Contains(strings.Join(calls[0].links, "\n"), side.url()) || calls[1].method != http.MethodPost {
		t.Fatalf("the publisher's first requests: %+v; want OPTIONS answered 204 with a Link to %s, then POST", calls, side.url())
	}
	offer := calls[1].body
	for _, want := range []string{side.HostIP + " ", "typ relay"} {
		if !strings.Contains(offer, want) {
			t.Errorf("the offer has no %q:\n%s", want, offer)
		}
	}
	if st.Candidate != "relay" || !slices.Equal(st.ICEServers, []string{fmt.Sprintf("turn:%s:%d?transport=udp", side.TURNIP, turnPort)}) {
		t.Errorf("live through candidate %q with ICE servers %q; want relay, through %s", st.Candidate, st.ICEServers, side.url())
	}
	// MediaMTX's end of the pair is its host candidate, the publisher's the
	// TURN server's relay address.
	mtx.WaitPath("deskcast", "online", 10*time.Second, testenv.Online)
	var publisher testenv.MediaMTXSession
	sessions, err := mtx.WebRTCSessions()
	for _, s := range sessions {
		if s.State == "publish" {
			publisher = s
		}
	}
	if err != nil || !strings.HasPrefix(publisher.RemoteCandidate, "relay/udp/"+side.TURNIP+"/") ||
		!strings.HasPrefix(publisher.LocalCandidate, "host/udp/"+side.MediaIP+"/") {
		t.Errorf("MediaMTX's publishing session %+v (%v); want the publisher's end relayed by %s", publisher, err, side.TURNIP)
	}

	// A reader on MediaMTX, behind the same gateway, through the same TURN server.
	r, err := whepclient.Connect(ctx, mtx.WHEPURL("deskcast"), whepclient.Options{ICEServers: []webrtc.ICEServer{{
		URLs: []string{side.url()}, Username: side.User, Credential: side.Pass}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	followsSquare(t, f, r)

	// The credentials show nowhere.
	status, _ := json.Marshal(p.Status())
	for what, text := range map[string]string{"the status": string(status), "the logs": logs.String()} {
		if strings.Contains(text, side.Pass) {
			t.Errorf("the TURN credential is in %s", what)
		}
	}

	p.Close()
	mtx.WaitPath("deskcast", "offline after Close", 10*time.Second, testenv.Offline)
}

// httpRecorder is an http.RoundTripper that records each request's method
// and body and its answer's status and Link headers.
type httpRecorder struct {
	// hideOptionsLinks drops the Link headers of answers to OPTIONS (after
	// recording them), as from a server that names ICE servers in the 201 only.
	hideOptionsLinks bool

	mu  sync.Mutex
	log []httpCall
}

type httpCall struct {
	method, body string
	status       int
	links        []string
}

func (h *httpRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	c := httpCall{method: req.Method}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		c.body = string(b)
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		c.status, c.links = resp.StatusCode, resp.Header.Values("Link")
		if h.hideOptionsLinks && req.Method == http.MethodOptions {
			resp.Header.Del("Link")
		}
	}
	h.mu.Lock()
	h.log = append(h.log, c)
	h.mu.Unlock()
	return resp, err
}

func (h *httpRecorder) calls() []httpCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// notDebug returns the lines of a text log that are not at level DEBUG.
func notDebug(log string) string {
	var out []string
	for l := range strings.Lines(log) {
		if !strings.Contains(l, " level=DEBUG ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// lockedBuffer is a bytes.Buffer for writers on several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
