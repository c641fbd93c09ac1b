package rtc

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

const (
	// mtu is the RTP payload size: pion's default, which fits any LAN path
	// with room for SRTP, the header extensions and a TCP frame.
	mtu = 1200
	// keyframeEvery is the least time between two keyframe requests that
	// one viewer's PLIs and FIRs pass on to the shared encoder: a viewer on
	// a lossy link must not make a storm of IDRs for everyone.
	keyframeEvery = 500 * time.Millisecond
	// gatherTimeout bounds the answer's wait for host candidates (local
	// interfaces and the muxes: no STUN, so it is quick).
	gatherTimeout = 5 * time.Second
	// connectTimeout is how long a viewer has from its answer to a
	// connection (ICE and DTLS) before the session is dropped.
	connectTimeout = 15 * time.Second
	// initialEstimate and minEstimate bound each viewer's bandwidth
	// estimate (bit/s): it starts high (a LAN) and falls to what the
	// viewer's link carries once its feedback shows queueing or loss.
	initialEstimate = 20_000_000
	minEstimate     = 150_000
	// paceFactor is each viewer's send rate over its estimate: room for a
	// frame larger than the average without queueing it behind the last.
	paceFactor = 2.5
	// minPace is the least send rate, so a keyframe never takes seconds.
	minPace = 1_000_000
	// thinWindow is how far ahead of its estimate a viewer may be sent
	// before droppable frames are left out for it.
	thinWindow = 250 * time.Millisecond
)

// session is one viewer's PeerConnection and its sender.
type session struct {
	srv     *Server
	id      string
	viewer  Viewer
	codec   codecInfo
	track   Track
	pc      *webrtc.PeerConnection
	local   *webrtc.TrackLocalStaticRTP
	sender  *webrtc.RTPSender
	release func()
	bwe     cc.BandwidthEstimator // nil if none was made

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{}
	connOnce  sync.Once
	done      chan struct{} // closed once the PeerConnection is gone and release has run

	state                                        atomic.Value // webrtc.PeerConnectionState
	frames, bytes, packets, nacks, plis, thinned atomic.Uint64
	sub                                          atomic.Pointer[fanout.Subscriber[*media.Frame]]
	lastKey                                      atomic.Int64 // unix nanos of the last keyframe request passed on
}

// newSession makes the PeerConnection with its outgoing track, and starts
// the goroutine that owns its lifetime.
func (s *Server) newSession(v Viewer, c codecInfo, release func()) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.bwe = nil
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	bwe := s.bwe // set by the congestion-control interceptor as pc was made
	s.bwe = nil
	if err != nil {
		return nil, err
	}
	local, err := webrtc.NewTrackLocalStaticRTP(c.params.RTPCodecCapability, "screen", "deskcast")
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	sender, err := pc.AddTrack(local)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &session{srv: s, id: newID(), viewer: v, codec: c, track: s.cfg.Tracks[c.codec], pc: pc, local: local,
		sender: sender, release: release, bwe: bwe, ctx: ctx, cancel: cancel, connected: make(chan struct{}), done: make(chan struct{})}
	x.state.Store(webrtc.PeerConnectionStateNew)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		x.state.Store(st)
		switch st {
		case webrtc.PeerConnectionStateConnected:
			x.connOnce.Do(func() { close(x.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			x.close()
		}
	})
	s.sessions[x.id] = x
	s.wg.Add(1)
	go x.run()
	return x, nil
}

// negotiate answers offer, waiting for the host candidates so the answer
// carries them all (WHEP without trickle).
func (x *session) negotiate(ctx context.Context, offer string) (string, error) {
	if err := x.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", badOffer("%v", err)
	}
	if len(x.sender.GetParameters().Codecs) == 0 {
		return "", badOffer("no codec in common for the video section")
	}
	ans, err := x.pc.CreateAnswer(nil)
	if err != nil {
		return "", badOffer("%v", err)
	}
	gathered := webrtc.GatheringCompletePromise(x.pc)
	if err := x.pc.SetLocalDescription(ans); err != nil {
		return "", badOffer("%v", err)
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return "", errors.New("gathering candidates took too long")
	case <-ctx.Done():
		return "", ctx.Err()
	case <-x.ctx.Done():
		return "", ErrClosed
	}
	return x.pc.LocalDescription().SDP, nil
}

// close starts ending the session; done is closed once it has ended.
func (x *session) close() { x.cancel() }

// run sends frames once connected, until the session ends; then it closes
// the PeerConnection and calls release.
func (x *session) run() {
	defer x.srv.wg.Done()
	rtcpDone := make(chan struct{})
	go x.readRTCP(rtcpDone)
	defer func() {
		x.cancel()
		_ = x.pc.Close()
		<-rtcpDone
		x.srv.mu.Lock()
		delete(x.srv.sessions, x.id)
		x.srv.mu.Unlock()
		x.release()
		close(x.done)
		x.srv.log.Info("WebRTC viewer left", "id", x.id, "addr", x.viewer.Addr, "frames", x.frames.Load(),
			"bytes", x.bytes.Load(), "nacks", x.nacks.Load(), "plis", x.plis.Load())
	}()
	connecting := time.NewTimer(connectTimeout)
	select {
	case <-x.connected:
		connecting.Stop()
	case <-connecting.C:
		x.srv.log.Info("WebRTC viewer never connected", "id", x.id, "addr", x.viewer.Addr)
		return
	case <-x.ctx.Done():
		connecting.Stop()
		return
	}
	// Subscribed only now, so the first frame (a keyframe, which the
	// subscription asks the encoder for) cannot be sent before the viewer
	// can receive it.
	sub, err := x.track.Subscribe(x.viewer)
	if err != nil {
		x.srv.log.Info("WebRTC viewer has no stream", "id", x.id, "err", err)
		return
	}
	defer sub.Close()
	x.sub.Store(sub)
	w := newWriter(x)
	for {
		select {
		case f := <-sub.Frames():
			if w.thin(f, len(sub.Frames())) {
				x.thinned.Add(1)
				continue
			}
			if !w.send(f) {
				return
			}
			sub.Sent(len(f.Data))
			x.frames.Add(1)
		case <-sub.Done():
			return
		case <-x.ctx.Done():
			return
		}
	}
}

// readRTCP reads the viewer's feedback, which also drives the interceptors
// (NACK responder, reports), and passes keyframe requests on, rate limited.
func (x *session) readRTCP(done chan struct{}) {
	defer close(done)
	for {
		pkts, _, err := x.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				x.plis.Add(1)
				now := time.Now().UnixNano()
				if last := x.lastKey.Load(); now-last >= int64(keyframeEvery) && x.lastKey.CompareAndSwap(last, now) {
					x.track.RequestKeyframe()
				}
			case *rtcp.TransportLayerNack:
				for _, n := range p.Nacks {
					x.nacks.Add(uint64(len(n.PacketList())))
				}
			}
		}
	}
}

func (x *session) stats() SessionStats {
	st := SessionStats{ID: x.id, Viewer: x.viewer, Codec: x.codec.codec, State: x.state.Load().(webrtc.PeerConnectionState).String(),
		Frames: x.frames.Load(), Bytes: x.bytes.Load(), Packets: x.packets.Load(), NACKs: x.nacks.Load(), PLIs: x.plis.Load()}
	if sub := x.sub.Load(); sub != nil {
		st.Skipped = sub.Stats().Dropped
	}
	st.Thinned = x.thinned.Load()
	st.Estimate = x.estimate()
	return st
}

// estimate is what the viewer's link is estimated to carry, in bit/s; the
// pace rate when there is no estimator.
func (x *session) estimate() int {
	if x.bwe == nil {
		return x.srv.cfg.PaceRate
	}
	return x.bwe.GetTargetBitrate()
}

// writer packetizes frames for one viewer and paces the packets.
type writer struct {
	x       *session
	pay     rtp.Payloader
	seq     uint16
	ts0     uint32
	joined  time.Time // when the viewer subscribed: older frames are a replayed group of pictures
	first   time.Time
	lastTS  uint32
	started bool
	extID   uint8 // the playout-delay extension's negotiated ID; 0 when not negotiated
	ext     []byte
	pace    pacer
	budget  budget // what the viewer's estimate lets through, for thinning
}

func newWriter(x *session) *writer {
	w := &writer{x: x, seq: uint16(rand.Uint32()), ts0: rand.Uint32(), joined: time.Now(),
		pace: pacer{rate: float64(x.srv.cfg.PaceRate) / 8, burst: 16 << 10}}
	switch x.codec.codec {
	case media.VP8:
		w.pay = &codecs.VP8Payloader{EnablePictureID: true}
	default:
		w.pay = &codecs.H264Payloader{}
	}
	for _, h := range x.sender.GetParameters().HeaderExtensions {
		if h.URI == PlayoutDelayURI {
			w.extID = uint8(h.ID)
			w.ext, _ = rtp.PlayoutDelayExtension{MinDelay: 0, MaxDelay: 0}.Marshal()
		}
	}
	return w
}

// thin reports whether f is to be left out for this viewer: a droppable
// frame (no later frame refers to it) when the viewer's link is behind, i.e.
// more frames wait for it (backlog) or it has been sent more than its
// estimate lets through. It also sets the pace rate from the estimate.
func (w *writer) thin(f *media.Frame, backlog int) bool {
	est := float64(w.x.estimate())
	w.pace.rate = min(float64(w.x.srv.cfg.PaceRate), max(minPace, est*paceFactor)) / 8
	w.budget.refill(est / 8)
	if f.Droppable && (backlog > 0 || w.budget.tokens < 0) {
		return true
	}
	w.budget.tokens -= float64(len(f.Data))
	return false
}

// budget is a token bucket of the bytes the viewer's estimate lets through,
// thinWindow deep; sent frames spend it, into debt if need be.
type budget struct {
	tokens float64
	last   time.Time
}

// refill adds what rate bytes a second brought since the last call.
func (b *budget) refill(rate float64) {
	now := time.Now()
	depth := rate * thinWindow.Seconds()
	if b.last.IsZero() {
		b.tokens = depth
	} else {
		b.tokens = min(depth, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
}

// timestamp is f's RTP time: 90 kHz from its capture time, so the viewer
// plays frames at the pace they were grabbed, not at a fixed rate. The
// frames of a replayed group of pictures, captured before the viewer
// joined, count as captured when it joined: a tick apart, so they play at
// once and the live frames keep their true spacing.
func (w *writer) timestamp(f *media.Frame) uint32 {
	captured := f.Captured
	if captured.Before(w.joined) {
		captured = w.joined
	}
	if !w.started {
		w.started, w.first, w.lastTS = true, captured, w.ts0
		return w.ts0
	}
	ts := w.ts0 + uint32(captured.Sub(w.first)*90/time.Millisecond)
	if int32(ts-w.lastTS) <= 0 { // a clock step or the same capture: keep time moving
		ts = w.lastTS + 1
	}
	w.lastTS = ts
	return ts
}

// send writes f's packets; it reports false when the session ended.
func (w *writer) send(f *media.Frame) bool {
	ts := w.timestamp(f)
	payloads := w.pay.Payload(mtu, f.Data)
	for i, p := range payloads {
		if !w.pace.wait(w.x.ctx, len(p)+40) {
			return false
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: w.seq, Timestamp: ts}, Payload: p}
		w.seq++
		if w.extID != 0 {
			_ = pkt.Header.SetExtension(w.extID, w.ext)
		}
		if err := w.x.local.WriteRTP(&pkt); err != nil {
			if w.x.ctx.Err() != nil {
				return false
			}
			continue // one lost packet: the viewer asks again
		}
		w.x.packets.Add(1)
		w.x.bytes.Add(uint64(len(p)))
	}
	return true
}

// pacer is a token bucket: rate bytes a second, at most burst at once.
type pacer struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// wait takes n bytes' worth of tokens, sleeping until there are enough; it
// reports false when ctx ends first.
func (p *pacer) wait(ctx context.Context, n int) bool {
	now := time.Now()
	if p.last.IsZero() {
		p.tokens = p.burst
	} else {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	p.tokens -= float64(n)
	if p.tokens >= 0 {
		return ctx.Err() == nil
	}
	d := time.Duration(-p.tokens / p.rate * float64(time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
