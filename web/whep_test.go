package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
	"github.com/deskcast/deskcast/rtc"
	"github.com/deskcast/deskcast/web"
)

// stillScreen is a picture source that emits one picture and then nothing.
func stillScreen(ctx context.Context, emit func(*media.Picture)) error {
	const w, h = 160, 96
	pix := make([]byte, w*h*4)
	for i := range pix {
		pix[i] = byte(i / 97)
	}
	p := media.NewPicture(pix, w, h, w*4, media.BGRX, nil)
	p.Captured = time.Now()
	emit(p)
	<-ctx.Done()
	return nil
}

// whepAdapter is the engine's: rtc's errors in web's words.
type whepAdapter struct{ *rtc.Server }

func (a whepAdapter) Offer(ctx context.Context, offer string, v fanout.SubscriberInfo, release func()) (string, string, error) {
	ans, id, err := a.Server.Offer(ctx, offer, v, release)
	if errors.Is(err, rtc.ErrBadOffer) {
		err = fmt.Errorf("%w: %w", web.ErrBadOffer, err)
	}
	return ans, id, err
}

func (a whepAdapter) End(id string) error {
	err := a.Server.End(id)
	if errors.Is(err, rtc.ErrNoSession) {
		err = fmt.Errorf("%w: %w", web.ErrNoSession, err)
	}
	return err
}

// whepServer is a web server with WebRTC wired in as the engine does it: an
// H.264 pipeline track (OpenH264) over a still screen, the rtc server on the
// HTTP port's number and ICE-TCP demultiplexed off the HTTP listener.
type whepServer struct {
	*testServer
	rtc *rtc.Server
}

func startWHEP(t *testing.T, cfg web.Config) *whepServer {
	t.Helper()
	if err := h264.Available(); err != nil {
		t.Skip(err)
	}
	ts := startServer(t, cfg, newFeed())
	pipe := pipeline.New(fanout.SourceFunc[*media.Picture](stillScreen), pipeline.Options{IdleStop: 10 * time.Millisecond, Logger: quiet})
	track := pipe.Track(pipeline.TrackOptions{Name: "h264", Delivery: pipeline.FromKeyframe,
		Encoder: func() (media.Encoder, error) { return h264.New(h264.Options{}) }})
	r, err := rtc.New(rtc.Config{Tracks: map[media.Codec]rtc.Track{media.H264: track}, UDPPort: ts.srv.Port(),
		TCP: ts.srv.ICETCP(), Loopback: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After the web server (registered earlier, so it runs later? no:
		// cleanups run last-first, so this runs first): close rtc, then the pipeline.
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		pipe.Close()
	})
	ts.srv.SetWebRTC(whepAdapter{r}, []string{"h264"}, track.Hub)
	return &whepServer{testServer: ts, rtc: r}
}

// post sends an offer to /whep; auth is "bearer", "query", "wrong" or "".
func (ws *whepServer) post(t *testing.T, c *http.Client, offer, ctype, auth string) (*http.Response, string) {
	t.Helper()
	target := ws.base + "/whep"
	if auth == "query" {
		target += "?t=" + token
	}
	req, err := http.NewRequestWithContext(timeout(t), http.MethodPost, target, strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	switch auth {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+token)
	case "wrong":
		req.Header.Set("Authorization", "Bearer "+wrongToken)
	}
	if c == nil {
		c = ws.client
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body)
}

func (ws *whepServer) delete(t *testing.T, location string) int {
	t.Helper()
	resp := ws.do(t, timeout(t), http.MethodDelete, location)
	resp.Body.Close()
	return resp.StatusCode
}

// watch offers a new client over WHEP and answers it.
func (ws *whepServer) watch(t *testing.T, opt whepclient.Options, c *http.Client) (*whepclient.Client, string) {
	t.Helper()
	cl, offer, err := whepclient.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	resp, body := ws.post(t, c, offer, "application/sdp", "bearer")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("answer's Content-Type %q", ct)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whep/") {
		t.Fatalf("Location %q", loc)
	}
	if err := cl.Answer(body); err != nil {
		t.Fatal(err)
	}
	return cl, loc
}

func firstFrame(t *testing.T, c *whepclient.Client) whepclient.Frame {
	t.Helper()
	select {
	case f := <-c.Frames:
		if !f.Keyframe {
			t.Errorf("first frame not an IDR: NAL types %v", whepclient.NALTypes(f.Data))
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatalf("no frame (%d packets)", c.Packets.Load())
		return whepclient.Frame{}
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWHEP(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  whepclient.Options
	}{{"udp", whepclient.Options{}}, {"tcp on the HTTP port", whepclient.Options{TCPOnly: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			ws := startWHEP(t, web.Config{})
			cl, loc := ws.watch(t, tc.opt, nil)
			f := firstFrame(t, cl)
			if f.PlayoutDelay == nil || f.PlayoutDelay.MaxDelay != 0 {
				t.Errorf("playout delay %+v", f.PlayoutDelay)
			}
			st, _ := getStatus(t, ws.testServer, "")
			if !st.WebRTC.Available || st.WebRTC.Sessions != 1 || len(st.WebRTC.Codecs) != 1 || st.WebRTC.Codecs[0] != "h264" {
				t.Errorf("status webrtc %+v", st.WebRTC)
			}
			// With no MJPEG viewer, the status counts the WebRTC one and its picture.
			if st.Viewers != 1 || !st.Capturing || st.Width == 0 || st.Height == 0 {
				t.Errorf("status with one WebRTC viewer: viewers %d capturing %v size %dx%d; want 1, true, the picture's",
					st.Viewers, st.Capturing, st.Width, st.Height)
			}
			if vs, _ := ws.srv.Viewers(); len(vs) != 1 || !vs[0].Present {
				t.Errorf("viewers %+v, want one present", vs)
			}
			if code := ws.delete(t, loc); code != http.StatusOK {
				t.Errorf("DELETE: %d", code)
			}
			if n := ws.rtc.Sessions(); n != 0 {
				t.Errorf("%d sessions after DELETE", n)
			}
			if code := ws.delete(t, loc); code != http.StatusNotFound {
				t.Errorf("DELETE again: %d, want 404", code)
			}
		})
	}
}

func TestWHEPRefusals(t *testing.T) {
	ws := startWHEP(t, web.Config{})
	offer := offerOnly(t)
	for _, tc := range []struct {
		name, offer, ctype, auth string
		code                     int
		say                      string
	}{
		{"no token", offer, "application/sdp", "", http.StatusUnauthorized, ""},
		{"wrong token", offer, "application/sdp", "wrong", http.StatusUnauthorized, ""},
		{"wrong content type", offer, "application/json", "bearer", http.StatusUnsupportedMediaType, "application/sdp"},
		{"oversized", strings.Repeat("a", web.MaxOfferSize+1), "application/sdp", "bearer", http.StatusRequestEntityTooLarge, "too large"},
		{"not SDP", "hello", "application/sdp", "bearer", http.StatusBadRequest, "not an SDP offer"},
		{"no video", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "application/sdp", "bearer", http.StatusBadRequest, "no video"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ws.post(t, nil, tc.offer, tc.ctype, tc.auth)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.say) {
				t.Errorf("%d %q, want %d saying %q", resp.StatusCode, body, tc.code, tc.say)
			}
		})
	}
	if resp, body := ws.post(t, nil, offer, "application/sdp", "query"); resp.StatusCode != http.StatusCreated {
		t.Errorf("?t=: %d %s", resp.StatusCode, body)
	}
	eventually(t, "back to no session", func() bool { return ws.rtc.Sessions() <= 1 })
	// Nothing of the refused ones is held: the viewer list shows none present but the one accepted.
	vs, _ := ws.srv.Viewers()
	present := 0
	for _, v := range vs {
		if v.Present {
			present++
		}
	}
	if present > 1 {
		t.Errorf("%d viewers present, want at most the accepted one: %+v", present, vs)
	}
}

func TestWHEPAccessRules(t *testing.T) {
	t.Run("PIN", func(t *testing.T) {
		ws := startWHEP(t, web.Config{Access: access.Access{PIN: pin}})
		b := newBrowser(t, ws.testServer, "")
		offer := offerOnly(t)
		if resp, _ := ws.post(t, b.c, offer, "application/sdp", "bearer"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("before the PIN: %d, want 401", resp.StatusCode)
		}
		if resp, _ := b.postPIN(t, "pin="+pin); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("PIN: %d", resp.StatusCode)
		}
		cl, _ := ws.watch(t, whepclient.Options{}, b.c)
		firstFrame(t, cl)
	})
	t.Run("approval", func(t *testing.T) {
		ws := startWHEP(t, web.Config{Access: access.Access{Approve: access.ApproveAsk}})
		b := newBrowser(t, ws.testServer, "")
		offer := offerOnly(t)
		if resp, _ := ws.post(t, b.c, offer, "application/sdp", "bearer"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("waiting: %d, want 403", resp.StatusCode)
		}
		vs, _ := ws.srv.Viewers()
		if len(vs) != 1 {
			t.Fatalf("viewers %+v", vs)
		}
		if err := ws.srv.Allow(vs[0].ID); err != nil {
			t.Fatal(err)
		}
		cl, _ := ws.watch(t, whepclient.Options{}, b.c)
		firstFrame(t, cl)
	})
	t.Run("limit and Disconnect", func(t *testing.T) {
		ws := startWHEP(t, web.Config{Access: access.Access{MaxViewers: 1}})
		b1, b2 := newBrowser(t, ws.testServer, ""), newBrowser(t, ws.testServer, "")
		cl, _ := ws.watch(t, whepclient.Options{}, b1.c)
		firstFrame(t, cl)
		offer := offerOnly(t)
		if resp, _ := ws.post(t, b2.c, offer, "application/sdp", "bearer"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a second viewer over the limit of one: %d, want 503", resp.StatusCode)
		}
		vs, _ := ws.srv.Viewers()
		var id string
		for _, v := range vs {
			if v.Present {
				id = v.ID
			}
		}
		if err := ws.srv.Disconnect(id); err != nil {
			t.Fatal(err)
		}
		eventually(t, "closed", func() bool { return ws.rtc.Sessions() == 0 })
		// The PeerConnection is gone: the server sent DTLS close, the client sees it close.
		eventually(t, "closed on the client", func() bool {
			st := cl.PC.ConnectionState().String()
			return st == "closed" || st == "failed" || st == "disconnected"
		})
		// Its place is free again.
		cl2, _ := ws.watch(t, whepclient.Options{}, b2.c)
		firstFrame(t, cl2)
	})
}

// offerOnly is a client's offer; the client is closed when the test ends.
func offerOnly(t *testing.T) string {
	t.Helper()
	c, offer, err := whepclient.New(whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return offer
}

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestWHEPCyclesLeaveNothing(t *testing.T) {
	ws := startWHEP(t, web.Config{})
	// 200 rather than the 1,000: a session closed while pion's DTLS
	// handshake starts can leave that handshake's goroutines until its
	// timeout, and goleak, which checks when the package ends, then fails
	// (seen once at 1,000 cycles; a 1,000-cycle run alone passed, in 10 s).
	n := 200
	if testing.Short() {
		n = 20
	}
	// One to warm up (the encoder, pion's lazily made things).
	cl, loc := ws.watch(t, whepclient.Options{}, nil)
	firstFrame(t, cl)
	ws.delete(t, loc)
	_ = cl.Close()
	time.Sleep(100 * time.Millisecond)
	before := openFDs(t)
	start := time.Now()
	for i := range n {
		cl, offer, err := whepclient.New(whepclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		resp, body := ws.post(t, nil, offer, "application/sdp", "bearer")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("cycle %d: %d %s", i, resp.StatusCode, body)
		}
		if err := cl.Answer(body); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 { // every tenth all the way to media
			firstFrame(t, cl)
		}
		if code := ws.delete(t, resp.Header.Get("Location")); code != http.StatusOK {
			t.Fatalf("cycle %d: DELETE %d", i, code)
		}
		_ = cl.Close()
	}
	ws.tr.CloseIdleConnections()
	eventually(t, "no session", func() bool { return ws.rtc.Sessions() == 0 })
	var after int
	eventually(t, "back to the fds before", func() bool { after = openFDs(t); return after <= before+2 })
	t.Logf("%d cycles in %v; fds %d before, %d after", n, time.Since(start).Round(time.Millisecond), before, after)
}
