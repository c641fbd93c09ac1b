//go:build linux

package testenv_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/deskcast/deskcast/internal/testenv"
)

// TestMediaMTX brings up the real MediaMTX and checks what the WHIP tests
// rely on: its WHIP endpoint's answers (credentials, bad offers, methods), a
// WHIP publisher that goes online with its H.264 and Opus tracks, readable
// over RTSP without credentials, and all of it again after the server is
// killed and started on the same ports.
func TestMediaMTX(t *testing.T) {
	m := testenv.MediaMTX(t)
	t.Run("endpoints", func(t *testing.T) { checkMediaMTXEndpoints(t, m) })
	t.Run("publish", func(t *testing.T) { checkMediaMTXPublish(t, m, "deskcast") })

	m.Stop()
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Post(m.WHIPURL("deskcast"), "application/sdp", strings.NewReader("v=0")); err == nil {
		resp.Body.Close()
		t.Fatalf("after Stop, POST to the WHIP endpoint got %s; want no server", resp.Status)
	}

	m.Start()
	if p, err := m.Path("deskcast"); err != nil || p.Online {
		t.Fatalf("after a restart, path deskcast: %+v, %v; want offline", p, err)
	}
	t.Run("endpoints after restart", func(t *testing.T) { checkMediaMTXEndpoints(t, m) })
	t.Run("publish after restart", func(t *testing.T) { checkMediaMTXPublish(t, m, "deskcast") })
}

// checkMediaMTXEndpoints checks the HTTP status (and a telling header) of
// requests a WHIP client may make. A wrong credential is answered after a
// random pause of up to 4 s (MediaMTX's auth.LogAndDelayError), so the
// cases run in parallel.
func checkMediaMTXEndpoints(t *testing.T, m *testenv.MediaMTXServer) {
	whip, whep := m.WHIPURL("deskcast"), m.WHEPURL("deskcast")
	basic := func(user, pass string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	cases := []struct {
		name, method, url, auth, contentType, body string
		want                                       int
		header                                     map[string]string // "" wants the header absent
	}{
		{name: "OPTIONS without credentials asks for them", method: http.MethodOptions, url: whip,
			want: http.StatusUnauthorized, header: map[string]string{"WWW-Authenticate": `Basic realm="mediamtx"`}},
		{name: "OPTIONS with Basic", method: http.MethodOptions, url: whip, auth: basic(m.User, m.Pass),
			want: http.StatusNoContent, header: map[string]string{"Accept-Post": "application/sdp"}},
		{name: "OPTIONS with Bearer user:pass", method: http.MethodOptions, url: whip, auth: "Bearer " + m.Token(),
			want: http.StatusNoContent},
		{name: "OPTIONS with a wrong Bearer password", method: http.MethodOptions, url: whip,
			auth: "Bearer " + m.User + ":wrong", want: http.StatusUnauthorized, header: map[string]string{"WWW-Authenticate": ""}},
		{name: "OPTIONS with a Bearer token without a colon", method: http.MethodOptions, url: whip,
			auth: "Bearer " + m.Pass, want: http.StatusUnauthorized},
		{name: "POST of a bad offer with Bearer", method: http.MethodPost, url: whip, auth: "Bearer " + m.Token(),
			contentType: "application/sdp", body: "not an offer", want: http.StatusBadRequest},
		{name: "POST of a bad offer with a wrong Basic password", method: http.MethodPost, url: whip,
			auth: basic(m.User, "wrong"), contentType: "application/sdp", body: "not an offer", want: http.StatusUnauthorized},
		{name: "POST without credentials asks for them", method: http.MethodPost, url: whip,
			contentType: "application/sdp", body: "not an offer", want: http.StatusUnauthorized,
			header: map[string]string{"WWW-Authenticate": `Basic realm="mediamtx"`}},
		// The Content-Type is checked before the credentials.
		{name: "POST of JSON without credentials", method: http.MethodPost, url: whip,
			contentType: "application/json", body: "{}", want: http.StatusBadRequest},
		{name: "GET", method: http.MethodGet, url: whip, auth: "Bearer " + m.Token(), want: http.StatusMethodNotAllowed},
		// Ending a session needs no credentials: its URL is the secret.
		{name: "DELETE of an unknown session", method: http.MethodDelete,
			url: whip + "/00000000-0000-4000-8000-000000000000", want: http.StatusNotFound},
		{name: "WHEP OPTIONS without credentials (reading is open)", method: http.MethodOptions, url: whep,
			want: http.StatusNoContent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			c := &http.Client{Timeout: 10 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %s (%s); want %d", tc.method, tc.url, resp.Status, b, tc.want)
			}
			for k, v := range tc.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q; want %q", k, got, v)
				}
			}
		})
	}
}

// checkMediaMTXPublish publishes H.264 and Opus to path over WHIP with the
// Bearer token, waits for the path to be online with both tracks, reads its
// description over RTSP without credentials, and ends the session (DELETE).
func checkMediaMTXPublish(t *testing.T, m *testenv.MediaMTXServer, path string) {
	pub := whipPublish(t, m.WHIPURL(path), m.Token())
	m.WaitPath(path, "online from a webRTCSession with H264 and Opus", 15*time.Second, func(p testenv.MediaMTXPath) bool {
		return p.Online && p.Source == "webRTCSession" && slices.Contains(p.Tracks, "H264") &&
			slices.Contains(p.Tracks, "Opus") && p.InboundBytes > 0
	})

	status, sdp := rtspDescribe(t, m.RTSPURL(path))
	if status != 200 || !strings.Contains(sdp, "H264/90000") || !strings.Contains(strings.ToLower(sdp), "opus/48000") {
		t.Errorf("RTSP DESCRIBE %s: %d\n%s\nwant 200 with H264 and Opus", m.RTSPURL(path), status, sdp)
	}

	req, err := http.NewRequest(http.MethodDelete, pub.location, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE %s: %s; want 200", pub.location, resp.Status)
	}
	m.WaitPath(path, "offline after DELETE", 10*time.Second, testenv.Offline)
	if status, _ := rtspDescribe(t, m.RTSPURL(path)); status != 404 {
		t.Errorf("RTSP DESCRIBE %s after DELETE: %d; want 404", m.RTSPURL(path), status)
	}
}

// publisher is a WHIP session of whipPublish's.
type publisher struct {
	location string // the session's URL, for DELETE
}

// whipPublish is a minimal WHIP client: a pion PeerConnection sending an
// H.264 track (an IDR slice's worth of bytes, not a picture MediaMTX could
// decode) and an Opus track (silence), on loopback candidates only. It is
// closed when the test ends.
func whipPublish(t *testing.T, url, token string) publisher {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = pc.Close() })

	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
		ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		"video", "deskcast")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", "deskcast")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering took over 10 s")
	}

	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST %s: %s; want 201\n%s", url, resp.Status, answer)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("WHIP answer's Content-Type %q; want application/sdp", ct)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("WHIP answer's Location: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}

	go func() {
		// Annex B: an IDR slice header and bytes; Opus: a 20 ms silent frame (TOC 0xf8).
		nal := append([]byte{0, 0, 0, 1, 0x65, 0x88, 0x84}, make([]byte, 200)...)
		silence := []byte{0xf8, 0xff, 0xfe}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_ = audio.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
			if i%2 == 0 {
				_ = video.WriteSample(media.Sample{Data: nal, Duration: 40 * time.Millisecond})
			}
		}
	}()
	return publisher{location: loc.String()}
}

// rtspDescribe sends an RTSP DESCRIBE for url and returns the status code
// and the body (the SDP when 200).
func rtspDescribe(t *testing.T, url string) (int, string) {
	t.Helper()
	host := strings.TrimPrefix(url, "rtsp://")
	host = host[:strings.IndexByte(host, '/')]
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", url); err != nil {
		t.Fatal(err)
	}
	r := textproto.NewReader(bufio.NewReader(conn))
	line, err := r.ReadLine()
	if err != nil {
		t.Fatalf("RTSP DESCRIBE %s: %v", url, err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if proto != "RTSP/1.0" || err != nil {
		t.Fatalf("RTSP DESCRIBE %s: status line %q", url, line)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("RTSP DESCRIBE %s: %v", url, err)
	}
	n, _ := strconv.Atoi(h.Get("Content-Length"))
	body := make([]byte, n)
	if _, err := io.ReadFull(r.R, body); err != nil {
		t.Fatalf("RTSP DESCRIBE %s: body: %v", url, err)
	}
	return status, string(body)
}
