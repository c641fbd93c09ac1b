package rtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// PublishOptions configure a Publisher.
type PublishOptions struct {
	// URL is the media server's WHIP endpoint (http or https), e.g.
	// MediaMTX's http://host:8889/deskcast/whip.
	URL string
	// Token, if set, goes as "Authorization: Bearer" with every request; it
	// is never logged nor shown in the status.
	Token string
	// HTTP makes the WHIP requests; a client with a 10 s timeout when nil.
	HTTP *http.Client
	// Retry is the first wait before publishing again after a failure (1 s
	// when 0); it doubles after each failure up to MaxRetry (30 s when 0).
	Retry, MaxRetry time.Duration
	// OnChange, if set, is called after the state changes (not under a lock).
	OnChange func()
}

// The states of a Publisher.
const (
	PublishConnecting   = "connecting"   // the first attempt is under way
	PublishLive         = "live"         // the server receives the stream
	PublishReconnecting = "reconnecting" // the last attempt failed or the session ended: waiting to try again
	PublishStopped      = "stopped"      // Close was called
)

// PublishStatus is what a Publisher is doing.
type PublishStatus struct {
	State string `json:"state"`
	// URL is the endpoint without its query or user info.
	URL string `json:"url"`
	// Error says why the last attempt failed or the session ended.
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"` // when State was entered
	// Attempts counts the sessions tried since the publisher started.
	Attempts int `json:"attempts"`
	// While live: what was sent over the last second, and the round-trip
	// time from the server's receiver reports (0 until one has come).
	Bitrate int     `json:"bitrate"`
	FPS     float64 `json:"fps"`
	RTTMs   float64 `json:"rtt_ms"`
	// Frames and Bytes count what every session sent, for /metrics;
	// AudioPackets the sound's packets, AudioDropped those lost to a full queue.
	Frames       uint64 `json:"frames"`
	Bytes        uint64 `json:"bytes"`
	AudioPackets uint64 `json:"audio_packets"`
	AudioDropped uint64 `json:"audio_dropped"`
	// ICEServers are the STUN and TURN servers of the last attempt, which
	// the media server named in its Link headers (RFC 9725 §4.6), as URLs:
	// their usernames and credentials are never shown nor logged.
	ICEServers []string `json:"ice_servers,omitempty"`
	// Candidate is, while live, the kind of this end's ICE candidate in the
	// selected pair: "host" (straight to the server), "srflx" or "prflx"
	// (through a NAT), or "relay" (through a TURN server).
	Candidate string `json:"candidate,omitempty"`
}

// Publisher keeps the share published to a media server over WHIP (RFC
// 9725): one more session on the server's tracks, sending what the LAN's
// viewers get (no second encode), with its own queue, pacing and congestion
// feedback, so a slow or unreachable server never holds up a viewer. When
// the session cannot be made or ends, it tries again with backoff.
type Publisher struct {
	s      *Server
	opt    PublishOptions
	target *url.URL
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// ice are the STUN and TURN servers the media server named last (in
	// an answer to OPTIONS or in a 201): run's goroutine alone uses them.
	ice []webrtc.ICEServer

	mu             sync.Mutex
	st             PublishStatus
	frames, bytes  uint64 // of the sessions that have ended
	audioPackets   uint64
	audioDropped   uint64
	lastF, lastB   uint64 // totals at the last sample, for the rates
	lastSampleTime time.Time
}

// Publish starts publishing to opt.URL; the Publisher keeps at it until Close.
func (s *Server) Publish(opt PublishOptions) (*Publisher, error) {
	u, err := url.Parse(opt.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("publish URL %q: want the media server's WHIP endpoint, http:// or https://", opt.URL)
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if opt.Retry <= 0 {
		opt.Retry = time.Second
	}
	if opt.MaxRetry <= 0 {
		opt.MaxRetry = 30 * time.Second
	}
	shown := *u
	shown.User, shown.RawQuery, shown.Fragment = nil, "", ""
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{s: s, opt: opt, target: u, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		st: PublishStatus{State: PublishConnecting, URL: shown.String(), Since: time.Now()}}
	go p.run()
	return p, nil
}

// Status returns what the publisher is doing.
func (p *Publisher) Status() PublishStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Close ends the session (WHIP's DELETE) and waits until it is gone.
func (p *Publisher) Close() {
	p.cancel()
	<-p.done
}

func (p *Publisher) set(state string, err error) {
	p.mu.Lock()
	changed := p.st.State != state
	if changed {
		p.st.State, p.st.Since = state, time.Now()
	}
	p.st.Error = ""
	if err != nil {
		p.st.Error = err.Error()
	}
	if state != PublishLive {
		p.st.Bitrate, p.st.FPS, p.st.RTTMs, p.st.Candidate = 0, 0, 0, ""
	}
	p.mu.Unlock()
	if changed && p.opt.OnChange != nil {
		p.opt.OnChange()
	}
}

// run publishes until Close, trying again after each failure.
func (p *Publisher) run() {
	defer close(p.done)
	wait := p.opt.Retry
	for {
		started := time.Now()
		err := p.once()
		if p.ctx.Err() != nil {
			p.set(PublishStopped, nil)
			return
		}
		if errors.Is(err, ErrClosed) { // the share's WebRTC server is gone: nothing left to publish
			p.set(PublishStopped, err)
			return
		}
		if time.Since(started) > p.opt.MaxRetry {
			wait = p.opt.Retry // it was live a good while: this is a new failure
		}
		p.set(PublishReconnecting, err)
		p.s.log.Warn("publishing failed, retrying", "url", p.Status().URL, "err", err, "in", wait)
		select {
		case <-p.ctx.Done():
			p.set(PublishStopped, nil)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, p.opt.MaxRetry)
	}
}

// once makes one WHIP session and returns when it ends, with why.
func (p *Publisher) once() error {
	p.mu.Lock()
	p.st.Attempts++
	p.mu.Unlock()
	if len(p.s.codecs) == 0 {
		return errors.New("no track to publish")
	}
	servers, err := p.iceServers()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.st.ICEServers = iceServerURLs(servers)
	p.mu.Unlock()
	// H.264 where the server has it: every media server takes it.
	c := p.s.codecs[0]
	host := p.target.Host
	x, err := p.s.newSession(Viewer{ID: "publish", Addr: host, UserAgent: "media server", Since: time.Now()}, c,
		p.s.cfg.Audio != nil, true, servers, func() {})
	if err != nil {
		return err
	}
	defer func() {
		x.close()
		<-x.done
		st := x.stats()
		p.mu.Lock()
		p.frames += st.Frames
		p.bytes += st.Bytes
		p.audioPackets += st.AudioPackets
		p.audioDropped += st.AudioDropped
		p.mu.Unlock()
	}()
	offer, err := x.offer(p.ctx)
	if err != nil {
		return err
	}
	answer, location, later, err := p.post(offer)
	if err != nil {
		return err
	}
	if len(later) > 0 {
		// Without trickle ICE the offer is final: servers named only now
		// serve the next attempt (which this one failing to connect
		// without them brings about).
		if len(servers) == 0 {
			p.s.log.Info("the media server names ICE servers in its answer only: the next attempt uses them",
				"servers", iceServerURLs(later))
		}
		p.ice = later
	}
	if location != nil {
		defer p.delete(location)
	}
	if err := x.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("the media server's answer: %w", err)
	}
	if !strings.Contains(answer, "transport-cc") {
		x.bwe = nil // no congestion feedback will come: pace at the cap, thin nothing
	}
	select {
	case <-x.connected:
	case <-x.done:
		return errors.New("the media server never connected (is its WebRTC port reachable from here?)")
	case <-p.ctx.Done():
		return nil
	}
	cand := x.candidate()
	p.s.log.Info("publishing", "url", p.Status().URL, "codec", c.codec, "audio", x.audioLocal != nil,
		"ice_servers", len(servers), "candidate", cand)
	p.mu.Lock()
	p.st.Candidate = cand
	p.mu.Unlock()
	p.set(PublishLive, nil)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-x.done:
			return fmt.Errorf("the connection to the media server ended (%s)", x.state.Load().(webrtc.PeerConnectionState))
		case <-p.ctx.Done():
			return nil
		case now := <-t.C:
			p.sample(x, now)
		}
	}
}

// sample updates the live rates from the session's counters.
func (p *Publisher) sample(x *session, now time.Time) {
	st := x.stats()
	cand := x.candidate()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, b := p.frames+st.Frames, p.bytes+st.Bytes
	if !p.lastSampleTime.IsZero() {
		dt := now.Sub(p.lastSampleTime).Seconds()
		p.st.FPS = float64(f-p.lastF) / dt
		p.st.Bitrate = int(float64(b-p.lastB) * 8 / dt)
	}
	p.lastF, p.lastB, p.lastSampleTime = f, b, now
	p.st.Frames, p.st.Bytes = f, b
	p.st.AudioPackets, p.st.AudioDropped = p.audioPackets+st.AudioPackets, p.audioDropped+st.AudioDropped
	p.st.RTTMs = float64(x.rtt.Load()) / float64(time.Millisecond)
	p.st.Candidate = cand
}

// iceServers asks the media server for its STUN and TURN servers (WHIP's
// OPTIONS, RFC 9725 §4.6) and returns those the attempt uses: the ones it
// names now, else the ones it named last (some servers name them only in
// the 201). A server that does not take OPTIONS (404, 405, 403 or any
// other error) names none. One that cannot be reached, or that answers 401
// (the token, which the POST carries too, is not taken), ends the attempt
// here, as the POST would.
func (p *Publisher) iceServers() ([]webrtc.ICEServer, error) {
	resp, _, err := p.do(p.ctx, http.MethodOptions, p.target, "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, refused(resp)
	}
	if resp.StatusCode/100 == 2 {
		if s := parseICELinks(resp.Header.Values("Link")); len(s) > 0 {
			p.ice = s
		}
	}
	return p.ice, nil
}

// post sends the offer and returns the answer, the session's resource and
// the ICE servers the answer names.
func (p *Publisher) post(offer string) (string, *url.URL, []webrtc.ICEServer, error) {
	resp, body, err := p.do(p.ctx, http.MethodPost, p.target, "application/sdp", strings.NewReader(offer))
	if err != nil {
		return "", nil, nil, err
	}
	if err := refused(resp); err != nil {
		return "", nil, nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", nil, nil, fmt.Errorf("no WHIP endpoint at this URL (%s)", resp.Status)
	case resp.StatusCode != http.StatusCreated:
		why := strings.TrimSpace(string(bytes.SplitN(body, []byte("\n"), 2)[0]))
		if len(why) > 200 {
			why = why[:200]
		}
		if why != "" {
			why = ": " + why
		}
		return "", nil, nil, fmt.Errorf("the media server answered %s%s", resp.Status, why)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return "", nil, nil, fmt.Errorf("the media server answered with %q, not an SDP answer", ct)
	}
	var loc *url.URL
	if l := resp.Header.Get("Location"); l != "" {
		if loc, err = p.target.Parse(l); err != nil {
			return "", nil, nil, fmt.Errorf("the media server's Location %q: %w", l, err)
		}
	}
	return string(body), loc, parseICELinks(resp.Header.Values("Link")), nil
}

// delete ends the session on the server (WHIP's DELETE), briefly: the
// server drops a session gone silent anyway.
func (p *Publisher) delete(loc *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _, _ = p.do(ctx, http.MethodDelete, loc, "", nil)
}

// do makes one request to the media server, with the token if there is
// one, and returns the answer with up to 256 KB of its body.
func (p *Publisher) do(ctx context.Context, method string, u *url.URL, contentType string, body io.Reader) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opt.Token)
	}
	resp, err := p.opt.HTTP.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("reaching the media server: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	return resp, b, nil
}

// refused says so when the media server refused the token.
func refused(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("the media server refused the token (%s)", resp.Status)
	}
	return nil
}

// unwrapURLError drops net/http's "Post \"URL\":" prefix, which would
// repeat the URL (and its query) in the status.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
