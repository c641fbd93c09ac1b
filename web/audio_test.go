package web_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

// chunkFrames is the stereo frames in one synthetic chunk: 10 ms at 48 kHz.
const chunkFrames = 480

// quietly is how long the tests wait for something that must not happen,
// such as a source starting.
const quietly = 300 * time.Millisecond

// audioFeed is a synthetic AudioSource: every Run emits its chunks, one
// every 10 ms, and then waits for its ctx to end.
type audioFeed struct {
	chunks  [][]int16
	runs    atomic.Int32
	started chan int32 // the number of each Run, as it starts
}

// newAudioFeed makes n chunks of 48 kHz stereo whose samples differ from
// chunk to chunk and include both extremes and negative values.
func newAudioFeed(n int) *audioFeed {
	af := &audioFeed{started: make(chan int32, 64)}
	for i := range n {
		pcm := make([]int16, 2*chunkFrames)
		for j := range pcm {
			pcm[j] = int16(uint16((i*len(pcm) + j) * 40503)) // wraps through negatives
		}
		af.chunks = append(af.chunks, pcm)
	}
	if n > 0 {
		af.chunks[0][0], af.chunks[0][1] = math.MinInt16, math.MaxInt16
	}
	return af
}

func (af *audioFeed) Source() fanout.Source[*media.AudioChunk] {
	return fanout.SourceFunc[*media.AudioChunk](func(ctx context.Context, emit func(*media.AudioChunk)) error {
		af.started <- af.runs.Add(1)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for _, pcm := range af.chunks {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			emit(&media.AudioChunk{PCM: pcm, Rate: 48000, Channels: 2, Captured: time.Now()})
		}
		<-ctx.Done()
		return nil
	})
}

// wire is chunk i as it must travel: signed 16-bit little-endian samples.
func (af *audioFeed) wire(i int) []byte {
	b := make([]byte, 0, 2*len(af.chunks[i]))
	for _, v := range af.chunks[i] {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// newHub returns an AudioHub over af that closes when the test ends.
func newAudioHub(t *testing.T, af *audioFeed) *fanout.Hub[*media.AudioChunk] {
	t.Helper()
	h := fanout.New(af.Source(), fanout.Options[*media.AudioChunk]{Logger: quiet, Queue: web.AudioQueue, Prepare: web.AudioPrepare})
	t.Cleanup(h.Close)
	return h
}

// startAudioServer is a test server sharing af's sound through an AudioHub,
// with a device chosen, as the app sets it up.
func startAudioServer(t *testing.T, af *audioFeed, fd *feed) (*testServer, *fanout.Hub[*media.AudioChunk]) {
	t.Helper()
	hub := newAudioHub(t, af) // registered first: closes after the server
	ts := startServer(t, web.Config{Audio: hub}, fd)
	ts.srv.SetMeta(web.Meta{AudioDevice: "fake", AudioName: "Fake"})
	return ts, hub
}

// noRunWithin checks that nothing arrives on started for d.
func noRunWithin(t *testing.T, started <-chan int32, d time.Duration, what string) {
	t.Helper()
	select {
	case n := <-started:
		t.Fatalf("%s: the source's Run %d started", what, n)
	case <-time.After(d):
	}
}

// dialAudio opens /ws/audio with query and header; the caller checks the error.
func dialAudio(t *testing.T, ctx context.Context, ts *testServer, query string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://"+ts.srv.Addr().String()+"/ws/audio"+query,
		&websocket.DialOptions{HTTPClient: ts.client, HTTPHeader: h, CompressionMode: websocket.CompressionDisabled})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// head reads the start of a body that should be a short refusal; a stream
// served by mistake would never end.
func head(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(r, 1024))
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

// noAudio checks that a refused response carries no sound at all.
func noAudio(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if bytes.Contains(body, []byte("RIFF")) {
		t.Errorf("refused response carries a WAV header: %q", body[:min(len(body), 64)])
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "audio/") {
		t.Errorf("refused response has Content-Type %q", ct)
	}
}

// noCookie checks that a response refused for its token hands out no cookie.
func noCookie(t *testing.T, resp *http.Response) {
	t.Helper()
	if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("response refused for its token sets a cookie: %q", c)
	}
}

// refusedSocket checks a WebSocket dial was answered with status want and no sound.
func refusedSocket(t *testing.T, c *websocket.Conn, resp *http.Response, err error, want int) {
	t.Helper()
	if err == nil {
		_ = c.CloseNow()
		t.Fatalf("WebSocket dial succeeded, want status %d", want)
	}
	if resp == nil {
		t.Fatalf("WebSocket dial: %v, and no response; want status %d", err, want)
	}
	body := head(t, resp.Body) // the first 1 KiB, all Dial keeps
	if resp.StatusCode != want {
		t.Fatalf("WebSocket dial: status %d (%v), want %d", resp.StatusCode, err, want)
	}
	noAudio(t, resp, body)
}

func TestAudioAuth(t *testing.T) {
	af := newAudioFeed(10)
	ts, hub := startAudioServer(t, af, newFeed())
	good := &http.Cookie{Name: ts.cookieName(), Value: token}
	wrong := "Deskcast-test_token-0123456789ac" // same length, last character differs

	cases := []struct {
		name   string
		query  string
		cookie *http.Cookie
	}{
		{"no token", "", nil},
		{"wrong token", "?t=" + wrong, nil},
		{"empty token", "?t=", nil},
		{"wrong cookie", "", &http.Cookie{Name: ts.cookieName(), Value: wrong}},
		{"wrong token with valid cookie", "?t=" + wrong, good},
	}
	for _, path := range []string{"/audio.wav", "/ws/audio"} {
		for _, tc := range cases {
			t.Run("GET "+path+"/"+tc.name, func(t *testing.T) {
				var cookies []*http.Cookie
				if tc.cookie != nil {
					cookies = append(cookies, tc.cookie)
				}
				resp := ts.get(t, timeout(t), path+tc.query, cookies...)
				defer resp.Body.Close()
				body := head(t, resp.Body)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", resp.StatusCode)
				}
				noAudio(t, resp, body)
				noCookie(t, resp)
			})
		}
	}
	for _, tc := range cases {
		t.Run("WebSocket /ws/audio/"+tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.cookie != nil {
				h.Set("Cookie", tc.cookie.String())
			}
			c, resp, err := dialAudio(t, timeout(t), ts, tc.query, h)
			refusedSocket(t, c, resp, err, http.StatusUnauthorized)
			noCookie(t, resp)
		})
	}

	noRunWithin(t, af.started, quietly, "after refused requests only")
	if st := hub.Stats(); st.Running || st.Subscribers != 0 || st.Frames != 0 {
		t.Errorf("hub after refused requests only: Stats() = %+v, want not running, no listeners, no chunks", st)
	}
}

func TestAudioWAV(t *testing.T) {
	af := newAudioFeed(10)
	ts, _ := startAudioServer(t, af, newFeed())
	resp := ts.get(t, timeout(t), "/audio.wav?t="+token)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "audio/wav" {
		t.Errorf("Content-Type %q, want audio/wav", ct)
	}

	head := make([]byte, 44)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("reading the WAV header: read %q, then %v", head, err)
	}
	le := binary.LittleEndian
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"chunk ID", string(head[0:4]), "RIFF"},
		{"format", string(head[8:12]), "WAVE"},
		{"fmt chunk ID", string(head[12:16]), "fmt "},
		{"fmt chunk size", le.Uint32(head[16:]), uint32(16)},
		{"audio format (1 = PCM)", le.Uint16(head[20:]), uint16(1)},
		{"channels", le.Uint16(head[22:]), uint16(2)},
		{"sample rate", le.Uint32(head[24:]), uint32(48000)},
		{"byte rate", le.Uint32(head[28:]), uint32(48000 * 2 * 2)},
		{"block align", le.Uint16(head[32:]), uint16(4)},
		{"bits per sample", le.Uint16(head[34:]), uint16(16)},
		{"data chunk ID", string(head[36:40]), "data"},
	} {
		if f.got != f.want {
			t.Errorf("WAV header %s = %v, want %v (header % x)", f.name, f.got, f.want, head)
		}
	}

	// Then the samples, every chunk in the order emitted and nothing between.
	for i := range af.chunks {
		want := af.wire(i)
		got := make([]byte, len(want))
		if n, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("chunk %d: read %d of %d bytes, then %v", i, n, len(want), err)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < len(got) && got[at] == want[at] {
				at++
			}
			t.Fatalf("chunk %d differs from the emitted PCM at byte %d: got % x, want % x", i, at,
				got[at:min(at+8, len(got))], want[at:min(at+8, len(want))])
		}
	}
	if n := af.runs.Load(); n != 1 {
		t.Errorf("source ran %d times for one listener, want 1", n)
	}
}

func TestAudioWebSocket(t *testing.T) {
	af := newAudioFeed(10)
	ts, _ := startAudioServer(t, af, newFeed())
	ctx := timeout(t)
	c, resp, err := dialAudio(t, ctx, ts, "?t="+token, nil)
	if err != nil {
		t.Fatalf("WebSocket dial with the token: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}

	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("first message: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("first message is %v (% x), want a text message with the format", typ, msg)
	}
	var format map[string]any
	if err := json.Unmarshal(msg, &format); err != nil {
		t.Fatalf("format message %q: %v", msg, err)
	}
	if want := map[string]any{"type": "format", "rate": 48000.0, "channels": 2.0, "encoding": "s16le"}; !reflect.DeepEqual(format, want) {
		t.Fatalf("format message %s, want %v", msg, want)
	}

	for i := range af.chunks {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("chunk %d: a %v message %q, want binary", i, typ, msg)
		}
		want := af.wire(i)
		if len(msg) != 4+len(want) {
			t.Fatalf("chunk %d: %d bytes, want a 4-byte sequence number and %d bytes of PCM", i, len(msg), len(want))
		}
		if seq := binary.LittleEndian.Uint32(msg); seq != uint32(i+1) {
			t.Fatalf("chunk %d: sequence number %d (% x), want %d", i, seq, msg[:4], i+1)
		}
		if !bytes.Equal(msg[4:], want) {
			t.Fatalf("chunk %d: PCM differs from the emitted samples", i)
		}
	}
	if n := af.runs.Load(); n != 1 {
		t.Errorf("source ran %d times for one listener, want 1", n)
	}
}

// TestAudioWebSocketOrigin: a page on another site must not open the sound
// socket with the viewer's cookie or a leaked link.
func TestAudioWebSocketOrigin(t *testing.T) {
	af := newAudioFeed(10)
	ts, _ := startAudioServer(t, af, newFeed())
	host := ts.srv.Addr().String()
	cases := []struct {
		name   string
		origin string
		ok     bool
	}{
		{"other host", "http://evil.example", false},
		{"other host, same port", "http://evil.example:" + strings.Split(host, ":")[1], false},
		{"same host, other port", "http://127.0.0.1:1", false},
		{"the server itself", "http://" + host, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := timeout(t)
			c, resp, err := dialAudio(t, ctx, ts, "?t="+token, http.Header{"Origin": {tc.origin}})
			if !tc.ok {
				refusedSocket(t, c, resp, err, http.StatusForbidden)
				noRunWithin(t, af.started, quietly, "socket refused for its Origin")
				return
			}
			if err != nil {
				t.Fatalf("dial with Origin %s: %v", tc.origin, err)
			}
			if typ, msg, err := c.Read(ctx); err != nil || typ != websocket.MessageText {
				t.Fatalf("first message: %v %q, %v; want the format", typ, msg, err)
			}
		})
	}
}

func TestAudioUnavailable(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*web.Server)
		state string // /api/status audio.state
	}{
		{"screen only", func(s *web.Server) { s.SetMode(access.ModeScreen) }, "off"},
		{"no device chosen", func(s *web.Server) { s.SetMeta(web.Meta{}) }, "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			af := newAudioFeed(10)
			ts, _ := startAudioServer(t, af, newFeed())
			if st, _ := getStatus(t, ts, ""); st.Audio.State != "waiting" {
				t.Fatalf("before: audio status %+v, want state waiting", st.Audio)
			}
			tc.setup(ts.srv)

			resp := ts.get(t, timeout(t), "/audio.wav?t="+token)
			body := head(t, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/audio.wav: status %d, want 503", resp.StatusCode)
			}
			noAudio(t, resp, body)

			c, resp, err := dialAudio(t, timeout(t), ts, "?t="+token, nil)
			refusedSocket(t, c, resp, err, http.StatusServiceUnavailable)

			st, m := getStatus(t, ts, "")
			switch tc.state {
			case "off":
				if st.Audio != (web.AudioStatus{State: "off"}) {
					t.Errorf("audio status %+v (%v), want only state off", st.Audio, m["audio"])
				}
			default:
				if st.Audio.State != tc.state {
					t.Errorf("audio status %+v, want state %s", st.Audio, tc.state)
				}
			}
			noRunWithin(t, af.started, quietly, "while sound is not shared")
		})
	}
}

// TestHeadOpensNoDevice: a HEAD request gets the headers of a GET but must
// not open the sound card or start a screen capture to get them.
func TestHeadOpensNoDevice(t *testing.T) {
	af := newAudioFeed(10)
	fd := newFeed()
	fd.First = repeat(jpegFrame(t, 8, 8, 0))
	ts, hub := startAudioServer(t, af, fd)
	cases := []struct {
		path, ctype string
		started     <-chan int32
		stats       func() (running bool, viewers int)
	}{
		{"/audio.wav", "audio/wav", af.started, func() (bool, int) { st := hub.Stats(); return st.Running, st.Subscribers }},
		{"/snapshot.jpg", "image/jpeg", fd.Started, func() (bool, int) { st := ts.b.Stats(); return st.Running, st.Subscribers }},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp := ts.do(t, timeout(t), http.MethodHead, tc.path+"?t="+token)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HEAD %s: status %d, want 200", tc.path, resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
				t.Errorf("HEAD %s: Content-Type %q, want %q", tc.path, ct, tc.ctype)
			}
			if running, viewers := tc.stats(); running || viewers != 0 {
				t.Errorf("right after HEAD %s: running %v with %d subscribers, want neither", tc.path, running, viewers)
			}
			noRunWithin(t, tc.started, quietly, "HEAD "+tc.path)
		})
	}
}

// TestAudioSlowListener: a listener that stops reading keeps the newest 16
// chunks and loses the older ones, and the source never waits for it.
func TestAudioSlowListener(t *testing.T) {
	const emitted, queue = 40, 16
	af := newAudioFeed(emitted)
	hub := newAudioHub(t, af)
	l, err := hub.Subscribe(fanout.SubscriberInfo{ID: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	testenv.Eventually(t, "all chunks emitted", func() bool { return hub.Stats().Frames == emitted })

	for i := emitted - queue; i < emitted; i++ {
		var c *media.AudioChunk
		select {
		case c = <-l.Frames():
		default:
			t.Fatalf("queue ran dry after %d chunks, want %d", i-(emitted-queue), queue)
		}
		if c.Seq != uint64(i+1) {
			t.Fatalf("chunk %d in the queue has Seq %d, want %d (the newest %d of %d)", i-(emitted-queue), c.Seq, i+1, queue, emitted)
		}
		if !reflect.DeepEqual(c.PCM, af.chunks[i]) {
			t.Fatalf("chunk Seq %d does not carry the samples emitted as chunk %d", c.Seq, i)
		}
	}
	testenv.NothingOn(t, l.Frames(), "queue after the newest chunks")
	if d := l.Stats().Dropped; d != emitted-queue {
		t.Errorf("listener Stats().Dropped = %d, want %d", d, emitted-queue)
	}
	if st := hub.Stats(); st.Dropped != emitted-queue || st.Frames != emitted {
		t.Errorf("hub Stats() dropped %d of %d, want %d of %d", st.Dropped, st.Frames, emitted-queue, emitted)
	}
}
