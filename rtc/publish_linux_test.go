package rtc_test

import (
	"context"
	"fmt"
	"image"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/codec/opus"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/rtc"
)

// waitPublish waits until the publisher's state is want and returns its status.
func waitPublish(t *testing.T, p *rtc.Publisher, want string, within time.Duration) rtc.PublishStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := p.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing %q after %v (error %q), want %q", st.State, within, st.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// whiteAt decodes an access unit and reports whether the pixel at (x, y) is white.
func whiteAt(t *testing.T, dec *h264.Decoder, au []byte, x, y int) bool {
	t.Helper()
	img, err := dec.Decode(au)
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if img == nil {
		return false
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return r>>8 > 200 && g>>8 > 200 && b>>8 > 200
}

// lanWatches checks that a LAN viewer gets the next picture soon after a change.
func lanWatches(t *testing.T, f *fixture, c *whepclient.Client, what string) {
	t.Helper()
	for len(c.Frames) > 0 {
		<-c.Frames
	}
	f.screen.change <- struct{}{}
	select {
	case <-c.Frames:
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: the LAN viewer got no picture within 3 s of a change", what)
	}
}

// followsSquare decodes what r receives from its first keyframe on (the
// whole 320x240 picture) while the screen changes, until it shows the
// square moved to x = 100.
func followsSquare(t *testing.T, f *fixture, r *whepclient.Client) {
	t.Helper()
	dec, err := h264.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	// The screen's white square starts at x 20–59 and moves 8 px a change.
	var first whepclient.Frame
	for first = frame(t, r, 15*time.Second); !first.Keyframe; first = frame(t, r, 5*time.Second) {
	}
	if img, err := dec.Decode(first.Data); err != nil || img == nil || img.Bounds() != image.Rect(0, 0, 320, 240) {
		t.Fatalf("the media server's first picture: %v, %v; want 320x240", img, err)
	}
	// Every frame is decoded in order (the decoder needs them all); the
	// square reaches x = 100 after six to ten changes.
	moved := false
	for i := 0; i < 14 && !moved; i++ {
		f.screen.change <- struct{}{}
		wait := time.After(time.Second)
	read:
		for {
			select {
			case fr := <-r.Frames:
				moved = moved || whiteAt(t, dec, fr.Data, 100, 60)
			case <-wait:
				break read
			}
		}
	}
	if !moved {
		t.Fatal("the media server's reader never saw the square move to x = 100")
	}
}

// TestPublishToMediaMTX publishes the picture and the sound to a real
// MediaMTX over WHIP, reads them back from MediaMTX over WHEP, and kills
// and restarts the server: the LAN viewer never notices, and publishing
// comes back by itself. Close ends the session on the server.
func TestPublishToMediaMTX(t *testing.T) {
	mtx := testenv.MediaMTX(t)
	f, _ := newSoundFixture(t)
	ctx := context.Background()
	lan, _, _ := f.connect(t, ctx, whepclient.Options{Audio: true})
	frame(t, lan, 10*time.Second)

	p, err := f.srv.Publish(rtc.PublishOptions{URL: mtx.WHIPURL("deskcast"), Token: mtx.Token(),
		Retry: 200 * time.Millisecond, MaxRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitPublish(t, p, rtc.PublishLive, 15*time.Second)
	if n := f.srv.Sessions(); n != 1 {
		t.Errorf("%d viewers' sessions, want 1: the media server is not a viewer", n)
	}

	// A reader on the media server: the picture as painted, following a change.
	mtx.WaitPath("deskcast", "online", 10*time.Second, testenv.Online)
	r, err := whepclient.Connect(ctx, mtx.WHEPURL("deskcast"), whepclient.Options{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	followsSquare(t, f, r)

	// The sound: Opus that decodes to the 440 Hz tone.
	odec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer odec.Close()
	var pcm []int16
	for len(pcm) < 48000*2 {
		a := audioPacket(t, r)
		out, err := odec.Decode(a.Data, 960)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, out...)
	}
	want := 0.25 / math.Sqrt2
	if at := goertzel(pcm[len(pcm)/2:], 440); math.Abs(at-want) > want/5 {
		t.Errorf("the media server's sound: 440 Hz at %.4f, want %.4f", at, want)
	}
	path, err := mtx.Path("deskcast")
	if err != nil || !path.Online || strings.Join(path.Tracks, ",") != "H264,Opus" {
		t.Errorf("MediaMTX's path: %+v, %v; want online with H264 and Opus", path, err)
	}
	if st := p.Status(); st.Bytes == 0 || st.Frames == 0 || st.State != rtc.PublishLive {
		t.Errorf("status while live: %+v", st)
	}

	// Paused, the media server gets no pictures; resumed, they come again.
	f.pipe.SetPaused(true)
	time.Sleep(300 * time.Millisecond)
	for len(r.Frames) > 0 {
		<-r.Frames
	}
	select {
	case <-r.Frames:
		t.Error("the media server's reader got a picture while paused")
	case <-time.After(time.Second):
	}
	f.pipe.SetPaused(false)
	f.screen.change <- struct{}{}
	frame(t, r, 5*time.Second)

	// The server killed: the LAN viewer goes on, publishing says why and
	// waits; the server back, publishing comes back by itself.
	_ = r.Close()
	mtx.Stop()
	st := waitPublish(t, p, rtc.PublishReconnecting, 20*time.Second)
	t.Logf("while the server is down: %q", st.Error)
	lanWatches(t, f, lan, "the media server down")
	mtx.Start()
	waitPublish(t, p, rtc.PublishLive, 20*time.Second)
	lanWatches(t, f, lan, "the media server back")
	mtx.WaitPath("deskcast", "online", 10*time.Second, testenv.Online)
	r2, err := whepclient.Connect(ctx, mtx.WHEPURL("deskcast"), whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	frame(t, r2, 15*time.Second)

	// Close ends the session on the server too (DELETE).
	p.Close()
	if st := p.Status(); st.State != rtc.PublishStopped {
		t.Errorf("after Close: %q", st.State)
	}
	mtx.WaitPath("deskcast", "offline after Close", 10*time.Second, testenv.Offline)
	lanWatches(t, f, lan, "after publishing stopped")

	// SentBytes counts what the viewers were sent, and keeps it when they leave.
	sent := f.srv.SentBytes()
	if sent == 0 {
		t.Fatal("SentBytes is 0 with a viewer watching")
	}
	_ = lan.Close()
	for deadline := time.Now().Add(15 * time.Second); f.srv.Sessions() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the LAN viewer's session is still open 15 s after it closed")
		}
	}
	if after := f.srv.SentBytes(); after < sent {
		t.Errorf("SentBytes went from %d to %d as the viewer left", sent, after)
	}
}

// TestPublishFailures: a wrong token, a server that never answers, a bad
// URL and a server without WHIP each give a clear state, and the LAN viewer
// never notices.
func TestPublishFailures(t *testing.T) {
	f := newFixture(t, nil)
	lan, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	frame(t, lan, 10*time.Second)

	if _, err := f.srv.Publish(rtc.PublishOptions{URL: "rtmp://example.invalid/live"}); err == nil || !strings.Contains(err.Error(), "WHIP endpoint") {
		t.Errorf("an rtmp:// URL: %v, want an error asking for the WHIP endpoint", err)
	}

	t.Run("wrong token", func(t *testing.T) {
		mtx := testenv.MediaMTX(t)
		p, err := f.srv.Publish(rtc.PublishOptions{URL: mtx.WHIPURL("deskcast"), Token: "deskcast:wrong", Retry: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		st := waitPublish(t, p, rtc.PublishReconnecting, 10*time.Second)
		if !strings.Contains(st.Error, "refused the token") || !strings.Contains(st.Error, "401") {
			t.Errorf("error %q, want the token refused (401)", st.Error)
		}
		if strings.Contains(st.Error, "wrong") || strings.Contains(st.URL, "wrong") {
			t.Errorf("the token shows in the status: %+v", st)
		}
		lanWatches(t, f, lan, "the token refused")
	})

	t.Run("no OPTIONS", func(t *testing.T) {
		// Not WHIP at all: OPTIONS not allowed, which is no failure (no ICE
		// servers then), and the POST finds nothing.
		var methods []string
		var mu sync.Mutex
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			methods = append(methods, r.Method)
			mu.Unlock()
			if r.Method == http.MethodOptions {
				http.Error(w, "no", http.StatusMethodNotAllowed)
				return
			}
			http.NotFound(w, r)
		}))
		defer srv.Close()
		p, err := f.srv.Publish(rtc.PublishOptions{URL: srv.URL + "/whip", Retry: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		st := waitPublish(t, p, rtc.PublishReconnecting, 10*time.Second)
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(st.Error, "no WHIP endpoint") || !slices.Equal(methods, []string{http.MethodOptions, http.MethodPost}) {
			t.Errorf("error %q after %q; want OPTIONS refused, then POST finding no WHIP endpoint", st.Error, methods)
		}
	})

	t.Run("never answers", func(t *testing.T) {
		// A server that takes the connection and the request, and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 4096)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}()
		p, err := f.srv.Publish(rtc.PublishOptions{URL: "http://" + ln.Addr().String() + "/deskcast/whip?secret=x",
			HTTP: &httpClientWithTimeout, Retry: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st := waitPublish(t, p, rtc.PublishReconnecting, 10*time.Second)
		if !strings.Contains(st.Error, "reaching the media server") {
			t.Errorf("error %q, want one about reaching the media server", st.Error)
		}
		if strings.Contains(st.URL, "secret") || strings.Contains(st.Error, "secret") {
			t.Errorf("the URL's query shows in the status: %+v", st)
		}
		lanWatches(t, f, lan, "a media server that never answers")
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("Close took over 5 s with the server not answering")
		}
	})
}

var httpClientWithTimeout = http.Client{Timeout: time.Second}

// TestPublishLinkServersFromAnswer: a media server that names its ICE
// servers in the 201 only (the test's transport hides them from the answer
// to OPTIONS) has them used from the next attempt on. Here the server is a
// STUN server that never answers (a free port of 127.0.0.1): that attempt
// offers its host candidates after gatherTimeout and goes live all the same.
func TestPublishLinkServersFromAnswer(t *testing.T) {
	dead := fmt.Sprintf("stun:127.0.0.1:%d", testenv.FreePorts(t, "udp", 1)[0])
	mtx := testenv.MediaMTXWith(t, testenv.MediaMTXOptions{ICEServers: []testenv.MediaMTXICEServer{{URL: dead}}})
	f := newFixture(t, nil)
	rec := &httpRecorder{hideOptionsLinks: true}
	p, err := f.srv.Publish(rtc.PublishOptions{URL: mtx.WHIPURL("deskcast"), Token: mtx.Token(),
		HTTP: &http.Client{Transport: rec, Timeout: 10 * time.Second}, Retry: 200 * time.Millisecond, MaxRetry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if st := waitPublish(t, p, rtc.PublishLive, 15*time.Second); len(st.ICEServers) != 0 || st.Candidate != "host" {
		t.Errorf("the first attempt: ICE servers %q, candidate %q; want none and host", st.ICEServers, st.Candidate)
	}
	calls := rec.calls()
	if post := calls[len(calls)-1]; post.method != http.MethodPost || len(post.links) != 1 {
		t.Fatalf("the first POST: %+v; want the 201 naming the STUN server", post)
	}

	// The server restarted: the next attempt gathers from the STUN server
	// (in vain) and still goes live.
	mtx.Stop()
	waitPublish(t, p, rtc.PublishReconnecting, 20*time.Second)
	start := time.Now()
	mtx.Start()
	st := waitPublish(t, p, rtc.PublishLive, 30*time.Second)
	t.Logf("live again %v after the server came back", time.Since(start).Round(time.Millisecond))
	if want := []string{dead}; !slices.Equal(st.ICEServers, want) {
		t.Errorf("the next attempt's ICE servers: %q, want %q", st.ICEServers, want)
	}
	mtx.WaitPath("deskcast", "online", 10*time.Second, testenv.Online)
}
