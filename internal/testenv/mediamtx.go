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
// (TCP only) and its control API, each on a free port of 127.0.0.1, with
// HLS, RTMP, SRT and MoQ off. Any path takes a publisher; publishing needs
// User and Pass (as Basic, or as Token in an Authorization: Bearer header),
// reading needs nothing.
type MediaMTXServer struct {
	// User and Pass are the one publisher's credentials.
	User, Pass string

	t                   testing.TB
	bin, dir, conf      string
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
	bin := mediamtxBin(t)
	// rand.Text is base32 (A-Z, 2-7), within what MediaMTX takes as a plain password.
	m := &MediaMTXServer{t: t, bin: bin, dir: t.TempDir(), User: "deskcast", Pass: rand.Text()}
	tcp := freePorts(t, "tcp", 3)
	m.webrtcPort, m.rtspPort, m.apiPort = tcp[0], tcp[1], tcp[2]
	m.icePort = freePorts(t, "udp", 1)[0]
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

// config is the server's mediamtx.yml. Every listener is on 127.0.0.1; the
// only ICE candidate offered is 127.0.0.1 at the UDP port (no interface
// addresses, no STUN), so nothing leaves the machine.
func (m *MediaMTXServer) config() string {
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
apiAddress: 127.0.0.1:%[3]d
metrics: false
pprof: false
playback: false
rtsp: true
rtspTransports: [tcp]
rtspEncryption: "no"
rtspAddress: 127.0.0.1:%[4]d
rtmp: false
hls: false
webrtc: true
webrtcAddress: 127.0.0.1:%[5]d
webrtcEncryption: false
webrtcLocalUDPAddress: 127.0.0.1:%[6]d
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
webrtcICEServers2: []
srt: false
moq: false
paths:
  all_others:
`, m.User, m.Pass, m.apiPort, m.rtspPort, m.webrtcPort, m.icePort)
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
			m.t.Fatalf("MediaMTX did not answer on 127.0.0.1:%d (WebRTC), :%d (RTSP), :%d (API) within 30 s:\n%s",
				m.webrtcPort, m.rtspPort, m.apiPort, g.out)
		}
	}
}

// answers says whether each listener takes connections: the WebRTC and API
// servers answer HTTP, RTSP accepts a TCP connection.
func (m *MediaMTXServer) answers(c *http.Client) bool {
	for _, port := range []int{m.webrtcPort, m.apiPort} {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
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
	return fmt.Sprintf("http://127.0.0.1:%d/%s/whip", m.webrtcPort, path)
}

// WHEPURL is the WHEP endpoint that reads path.
func (m *MediaMTXServer) WHEPURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s/whep", m.webrtcPort, path)
}

// RTSPURL is path's RTSP URL; the server takes RTSP over TCP only (ffmpeg:
// -rtsp_transport tcp).
func (m *MediaMTXServer) RTSPURL(path string) string {
	return fmt.Sprintf("rtsp://%s/%s", m.RTSPAddr(), path)
}

// RTSPAddr is the RTSP listener's address.
func (m *MediaMTXServer) RTSPAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.rtspPort) }

// ICEAddr is the UDP address of every WebRTC session's media.
func (m *MediaMTXServer) ICEAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.icePort) }

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
func (m *MediaMTXServer) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.apiPort) }

// Path asks the control API about path; a path nobody publishes or reads
// is not online and has no error.
func (m *MediaMTXServer) Path(path string) (MediaMTXPath, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(m.APIURL() + "/v3/paths/get/" + path)
	if err != nil {
		return MediaMTXPath{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return MediaMTXPath{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return MediaMTXPath{}, fmt.Errorf("MediaMTX API: %s: %s", resp.Status, b)
	}
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
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return MediaMTXPath{}, fmt.Errorf("MediaMTX API: %w", err)
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

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment
// ago, for network "tcp" or "udp".
func freePorts(t testing.TB, network string, n int) []int {
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
			t.Fatalf("freePorts: network %q", network)
		}
		_, port, _ := net.SplitHostPort(addr.String())
		p, _ := strconv.Atoi(port)
		ports = append(ports, p)
	}
	return ports
}
