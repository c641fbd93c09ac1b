//go:build linux

package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MediaMTXVersion is the MediaMTX release scripts/mediamtx.sh builds.
const MediaMTXVersion = "v1.20.1"

// MediaMTXServer is a real MediaMTX media server on loopback, for the tests
// that publish over WHIP: WebRTC (WHIP and WHEP, ICE over one UDP port), RTSP
// (TCP only) and its control API, each on a free port of 127.0.0.1 (or of
// the address MediaMTXOptions give), with HLS, RTMP, SRT and MoQ off. Any
// path takes a publisher; publishing needs User and Pass (as Basic, or as
// Token in an Authorization: Bearer header), reading needs nothing.
type MediaMTXServer struct {
	// User and Pass are the one publisher's credentials.
	User, Pass string

	t                   testing.TB
	bin, dir, conf      string
	ns, host            string
	ice                 []MediaMTXICEServer
	webrtcPort, icePort int
	rtspPort, apiPort   int

	mu   sync.Mutex
	proc *group // nil while stopped
}

// MediaMTXPath is what MediaMTX's API says of one path.
type MediaMTXPath struct {
	Online       bool     // a publisher is sending
	Source       string   // the publisher's kind ("webRTCSession" for WHIP), "" if none
	Tracks       []string // its codecs ("H264", "Opus")
	Readers      int
	InboundBytes uint64
}

// MediaMTXOptions run a MediaMTXServer elsewhere than on this namespace's
// loopback, and have it name ICE servers; the zero value is MediaMTX's.
type MediaMTXOptions struct {
	// NS is a network namespace to run the server in (a Link's NS; root
	// and ip are needed then), and Host its address there: the server
	// listens on Host, and offers it as its ICE candidate. A new namespace
	// has every port free, so those picked here do.
	NS, Host string
	// ICEServers are what the server names to WHIP and WHEP clients in
	// Link headers, answering OPTIONS and in the 201 (webrtcICEServers2,
	// clientOnly: it does not gather candidates through them itself).
	ICEServers []MediaMTXICEServer
}

// MediaMTXICEServer is one STUN or TURN server, with its credentials for TURN.
type MediaMTXICEServer struct{ URL, User, Pass string }

// mediamtxBinary is scripts/mediamtx.sh's answer, once per test binary.
var mediamtxBinary struct {
	once sync.Once
	path string
	err  error
}

// MediaMTX builds MediaMTX once (scripts/mediamtx.sh, cached under
// ~/.cache/deskcast; make check and make test build it before the tests),
// starts it with a configuration of its own and stops it when the test ends.
// A failed build fails the test with the script's output, as a missing
// program does (Need): make check and make test provide it.
func MediaMTX(t testing.TB) *MediaMTXServer {
	t.Helper()
	return MediaMTXWith(t, MediaMTXOptions{})
}

// MediaMTXWith is MediaMTX with options.
func MediaMTXWith(t testing.TB, opt MediaMTXOptions) *MediaMTXServer {
	t.Helper()
	bin := mediamtxBin(t)
	if opt.Host == "" {
		opt.Host = "127.0.0.1"
	}
	// rand.Text is base32 (A-Z, 2-7), within what MediaMTX takes as a plain password.
	m := &MediaMTXServer{t: t, bin: bin, dir: t.TempDir(), User: "deskcast", Pass: rand.Text(),
		ns: opt.NS, host: opt.Host, ice: opt.ICEServers}
	tcp := FreePorts(t, "tcp", 3)
	m.webrtcPort, m.rtspPort, m.apiPort = tcp[0], tcp[1], tcp[2]
	m.icePort = FreePorts(t, "udp", 1)[0]
	m.conf = filepath.Join(m.dir, "mediamtx.yml")
	if err := os.WriteFile(m.conf, []byte(m.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	m.Start()
	return m
}

// mediamtxBin runs scripts/mediamtx.sh, found from the test's working
// directory up, and returns the binary's path.
func mediamtxBin(t testing.TB) string {
	t.Helper()
	b := &mediamtxBinary
	b.once.Do(func() {
		script, err := repoFile("scripts/mediamtx.sh")
		if err != nil {
			b.err = err
			return
		}
		start := time.Now()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("bash", script)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			b.err = fmt.Errorf("%s (it builds MediaMTX %s from the Go module proxy): %v\n%s",
				script, MediaMTXVersion, err, stderr.String())
			return
		}
		b.path = strings.TrimSpace(stdout.String())
		if d := time.Since(start); d > 5*time.Second {
			t.Logf("built MediaMTX %s in %v: %s", MediaMTXVersion, d.Round(time.Second), b.path)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// repoFile finds rel in the working directory or the nearest parent that
// has it: a package's tests run in the package's directory.
func repoFile(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s not found in %s or any parent", rel, wd)
		}
	}
}

// config is the server's mediamtx.yml. Every listener is on 127.0.0.1 (or
// the Host given); the only ICE candidate offered is that address at the UDP
// port (no interface addresses, no STUN), so nothing leaves the machine.
func (m *MediaMTXServer) config() string {
	ice := "[]"
	if len(m.ice) > 0 {
		ice = ""
		for _, s := range m.ice {
			ice += fmt.Sprintf("\n  - url: %s\n    username: %s\n    password: %s\n    clientOnly: true",
				strconv.Quote(s.URL), strconv.Quote(s.User), strconv.Quote(s.Pass))
		}
	}
	return fmt.Sprintf(`logLevel: info
logDestinations: [stdout]
authMethod: internal
authInternalUsers:
  - user: %[1]s
    pass: %[2]s
    ips: []
    permissions:
      - action: publish
        path:
  - user: any
    pass:
    ips: []
    permissions:
      - action: read
        path:
      - action: playback
        path:
      - action: api
      - action: metrics
api: true
apiAddress: %[3]s
metrics: false
pprof: false
playback: false
rtsp: true
rtspTransports: [tcp]
rtspEncryption: "no"
rtspAddress: %[4]s
rtmp: false
hls: false
webrtc: true
webrtcAddress: %[5]s
webrtcEncryption: false
webrtcLocalUDPAddress: %[6]s
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [%[7]s]
webrtcICEServers2: %[8]s
srt: false
moq: false
paths:
  all_others:
`, m.User, m.Pass, m.addr(m.apiPort), m.addr(m.rtspPort), m.addr(m.webrtcPort), m.addr(m.icePort), m.host, ice)
}

// Start starts the server (again, after Stop) on the same ports and
// configuration, and returns once its WebRTC, RTSP and API ports answer.
func (m *MediaMTXServer) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.t.Fatal("MediaMTX: Start while running")
	}
	cmd := exec.Command(m.bin, m.conf)
	if m.ns != "" {
		cmd = Command(m.ns, m.bin, m.conf)
	}
	cmd.Dir = m.dir
	// MTX_* variables would override the configuration file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MTX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	g, err := startGroup(cmd, nil)
	if err != nil {
		m.t.Fatalf("starting MediaMTX: %v", err)
	}
	m.proc = g
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		if m.answers(client) {
			return
		}
		select {
		case <-g.exited:
			m.proc = nil
			m.t.Fatalf("MediaMTX exited at start (%v):\n%s", cmd.ProcessState, g.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("MediaMTX did not answer on %s (WebRTC), %s (RTSP), %s (API) within 30 s:\n%s",
				m.addr(m.webrtcPort), m.addr(m.rtspPort), m.addr(m.apiPort), g.out)
		}
	}
}

// answers says whether each listener takes connections: the WebRTC and API
// servers answer HTTP, RTSP accepts a TCP connection.
func (m *MediaMTXServer) answers(c *http.Client) bool {
	for _, port := range []int{m.webrtcPort, m.apiPort} {
		resp, err := c.Get("http://" + m.addr(port) + "/")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	conn, err := net.DialTimeout("tcp", m.RTSPAddr(), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stop kills the server (SIGKILL, as a crash would: no session is closed
// and nothing is sent) and waits for it. A stopped server does nothing.
func (m *MediaMTXServer) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return
	}
	m.proc.stop(0)
	m.proc = nil
}

// Output returns the server's last lines of log.
func (m *MediaMTXServer) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return ""
	}
	return m.proc.out.String()
}

// Token is what a WHIP client sends as `Authorization: Bearer` to publish:
// with internal users, MediaMTX reads a Bearer value with one colon as
// user:pass (docs/2-features/06-authentication.md); any other Bearer value
// is a JWT or a token for an external auth server, and is refused here.
func (m *MediaMTXServer) Token() string { return m.User + ":" + m.Pass }

// WHIPURL is the WHIP endpoint that publishes to path (e.g. "deskcast").
func (m *MediaMTXServer) WHIPURL(path string) string {
	return fmt.Sprintf("http://%s/%s/whip", m.addr(m.webrtcPort), path)
}

// WHEPURL is the WHEP endpoint that reads path.
func (m *MediaMTXServer) WHEPURL(path string) string {
	return fmt.Sprintf("http://%s/%s/whep", m.addr(m.webrtcPort), path)
}

// RTSPURL is path's RTSP URL; the server takes RTSP over TCP only (ffmpeg:
// -rtsp_transport tcp).
func (m *MediaMTXServer) RTSPURL(path string) string {
	return fmt.Sprintf("rtsp://%s/%s", m.RTSPAddr(), path)
}

// RTSPAddr is the RTSP listener's address.
func (m *MediaMTXServer) RTSPAddr() string { return m.addr(m.rtspPort) }

// ICEAddr is the UDP address of every WebRTC session's media.
func (m *MediaMTXServer) ICEAddr() string { return m.addr(m.icePort) }

// addr is the server's address at port.
func (m *MediaMTXServer) addr(port int) string { return net.JoinHostPort(m.host, strconv.Itoa(port)) }

// WaitPath polls path's state until ok holds and returns it; the test fails
// (with the server's log) if it does not within the time given.
func (m *MediaMTXServer) WaitPath(path, what string, within time.Duration, ok func(MediaMTXPath) bool) MediaMTXPath {
	m.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := m.Path(path)
		if err == nil && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("MediaMTX's path %q not %s within %v: %+v, %v\n%s", path, what, within, p, err, m.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Online and Offline are WaitPath's usual conditions: a publisher sending
// (with at least one track), and none.
func Online(p MediaMTXPath) bool  { return p.Online && len(p.Tracks) > 0 }
func Offline(p MediaMTXPath) bool { return !p.Online }

// Pid is the running server's process ID (0 while stopped), for CPU figures.
func (m *MediaMTXServer) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.cmd.Process.Pid
}

// APIURL is the base of MediaMTX's control API (e.g. APIURL()+"/v3/paths/list").
func (m *MediaMTXServer) APIURL() string { return "http://" + m.addr(m.apiPort) }

// Path asks the control API about path; a path nobody publishes or reads
// is not online and has no error.
func (m *MediaMTXServer) Path(path string) (MediaMTXPath, error) {
	var p struct {
		Online bool `json:"online"`
		Source *struct {
			Type string `json:"type"`
		} `json:"source"`
		Tracks2 []struct {
			Codec string `json:"codec"`
		} `json:"tracks2"`
		Readers      []json.RawMessage `json:"readers"`
		InboundBytes uint64            `json:"inboundBytes"`
	}
	if found, err := m.api("/v3/paths/get/"+path, &p); err != nil || !found {
		return MediaMTXPath{}, err
	}
	out := MediaMTXPath{Online: p.Online, Readers: len(p.Readers), InboundBytes: p.InboundBytes}
	if p.Source != nil {
		out.Source = p.Source.Type
	}
	for _, tr := range p.Tracks2 {
		out.Tracks = append(out.Tracks, tr.Codec)
	}
	return out, nil
}

// MediaMTXSession is what MediaMTX's API says of one WebRTC session.
type MediaMTXSession struct {
	Path  string `json:"path"`
	State string `json:"state"` // "publish" (WHIP) or "read" (WHEP)
	// LocalCandidate and RemoteCandidate are the server's and the client's
	// ends of the selected candidate pair, as "type/protocol/address/port"
	// (e.g. "relay/udp/198.18.1.1/50000"), "" until one is selected.
	LocalCandidate  string `json:"localCandidate"`
	RemoteCandidate string `json:"remoteCandidate"`
}

// WebRTCSessions lists the server's WebRTC sessions.
func (m *MediaMTXServer) WebRTCSessions() ([]MediaMTXSession, error) {
	var l struct {
		Items []MediaMTXSession `json:"items"`
	}
	_, err := m.api("/v3/webrtcsessions/list", &l)
	return l.Items, err
}

// api GETs path from the control API into v; a 404 is no error, and leaves
// v as it was.
func (m *MediaMTXServer) api(path string, v any) (found bool, err error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(m.APIURL() + path)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("MediaMTX API: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return false, fmt.Errorf("MediaMTX API: %w", err)
	}
	return true, nil
}

// FreePorts returns n distinct ports of 127.0.0.1 that were free a moment
// ago, for network "tcp" or "udp".
func FreePorts(t testing.TB, network string, n int) []int {
	t.Helper()
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for range n {
		var addr net.Addr
		switch network {
		case "tcp":
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closers, addr = append(closers, l), l.Addr()
		case "udp":
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closers, addr = append(closers, c), c.LocalAddr()
		default:
			t.Fatalf("FreePorts: network %q", network)
		}
		_, port, _ := net.SplitHostPort(addr.String())
		p, _ := strconv.Atoi(port)
		ports = append(ports, p)
	}
	return ports
}
