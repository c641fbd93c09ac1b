package rtc

import (
	"context"
	"errors"
	"fmt"
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
	// gatherTimeout bounds the wait for candidates: an answer's are host
	// candidates (local interfaces and the muxes: quick); a publish
	// session's offer may have STUN and TURN servers' too.
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
	// thinWindow is how far ahead of thinHeadroom times its estimate a
	// viewer may be sent before droppable frames are left out for it. The
	// headroom is there because viewers sharing one link (a room on one
	// Wi-Fi) are sent each frame at the same moment: the queue that makes
	// for a few milliseconds reads as congestion to each one's estimate,
	// which then sits below what the link carries.
	thinWindow   = 500 * time.Millisecond
	thinHeadroom = 1.5
	// staleKeyframe is how old a keyframe's capture time may be before it
	// counts as a re-encoded held picture (see writer.timestamp).
	staleKeyframe = 100 * time.Millisecond
	// opusRate is Opus's RTP clock (RFC 7587), whatever the sound's own rate.
	opusRate = 48000
)

// session is one viewer's PeerConnection and its sender.
type session struct {
	srv    *Server
	id     string
	viewer Viewer
	codec  codecInfo // zero for a session with sound alone
	track  Track     // nil for a session with sound alone
	pc     *webrtc.PeerConnection
	local  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	// The sound, in the same media stream as the picture; nil without.
	audioLocal  *webrtc.TrackLocalStaticRTP
	audioSender *webrtc.RTPSender
	release     func()
	bwe         cc.BandwidthEstimator // nil if none was made

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{}
	connOnce  sync.Once
	done      chan struct{} // closed once the PeerConnection is gone and release has run

	state                                        atomic.Value // webrtc.PeerConnectionState
	frames, bytes, packets, nacks, plis, thinned atomic.Uint64
	sub                                          atomic.Pointer[fanout.Subscriber[*media.Frame]]
	audioSub                                     atomic.Pointer[fanout.Subscriber[*media.Frame]]
	audioPackets, audioBytes                     atomic.Uint64
	audioLoss                                    atomic.Int32 // the loss the viewer reports on the sound, in percent, smoothed (noteAudioLoss)
	lastKey                                      atomic.Int64 // unix nanos of the last keyframe request passed on
	rtt                                          atomic.Int64 // the round trip from the receiver's reports, nanoseconds
	publish                                      bool         // the session sends to a media server (Publisher), not a viewer
}

// newSession makes the PeerConnection with its outgoing tracks (the
// picture in codec c unless c is zero, and the sound if audio), and starts
// the goroutine that owns its lifetime. A publish session offers them
// send-only to a media server, gathering candidates from the STUN and TURN
// servers given too; a viewer's answers the viewer's offer.
func (s *Server) newSession(v Viewer, c codecInfo, audio, publish bool, servers []webrtc.ICEServer, release func()) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.bwe = nil
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	bwe := s.bwe // set by the congestion-control interceptor as pc was made
	s.bwe = nil
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &session{srv: s, id: newID(), viewer: v, codec: c, pc: pc, release: release, bwe: bwe, ctx: ctx, cancel: cancel,
		connected: make(chan struct{}), done: make(chan struct{}), publish: publish}
	// Both tracks in the stream "deskcast": the browser puts them in one
	// MediaStream and, as they share one clock (see audioWriter), plays
	// them in step.
	if c.codec != "" {
		x.track = s.cfg.Tracks[c.codec]
		if x.local, x.sender, err = addTrack(pc, c.params.RTPCodecCapability, "screen", publish); err != nil {
			cancel()
			return nil, err
		}
	}
	if audio {
		if x.audioLocal, x.audioSender, err = addTrack(pc, opusCodec.RTPCodecCapability, "sound", publish); err != nil {
			cancel()
			return nil, err
		}
	}
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

// addTrack adds a sending track to pc (in a send-only transceiver when
// the session makes the offer), closing pc on failure.
func addTrack(pc *webrtc.PeerConnection, c webrtc.RTPCodecCapability, id string, sendOnly bool) (*webrtc.TrackLocalStaticRTP, *webrtc.RTPSender, error) {
	local, err := webrtc.NewTrackLocalStaticRTP(c, id, "deskcast")
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	var sender *webrtc.RTPSender
	if sendOnly {
		var tr *webrtc.RTPTransceiver
		if tr, err = pc.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err == nil {
			sender = tr.Sender()
		}
	} else {
		sender, err = pc.AddTrack(local)
	}
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	return local, sender, nil
}

// negotiate answers offer, waiting for the host candidates so the answer
// carries them all (WHEP without trickle).
func (x *session) negotiate(ctx context.Context, offer string) (string, error) {
	if err := x.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", badOffer("%v", err)
	}
	if x.sender != nil && len(x.sender.GetParameters().Codecs) == 0 {
		return "", badOffer("no codec in common for the video section")
	}
	if x.audioSender != nil && len(x.audioSender.GetParameters().Codecs) == 0 {
		return "", badOffer("no codec in common for the audio section")
	}
	ans, err := x.pc.CreateAnswer(nil)
	if err != nil {
		return "", badOffer("%v", err)
	}
	gathered := webrtc.GatheringCompletePromise(x.pc)
	if err := x.pc.SetLocalDescription(ans); err != nil {
		return "", badOffer("%v", err)
	}
	return x.gather(ctx, gathered, false)
}

// offer makes the publish session's offer, with every candidate gathered
// in it (WHIP without trickle): host candidates, and those of the STUN and
// TURN servers that answer within gatherTimeout.
func (x *session) offer(ctx context.Context) (string, error) {
	o, err := x.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("making the offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(x.pc)
	if err := x.pc.SetLocalDescription(o); err != nil {
		return "", fmt.Errorf("making the offer: %w", err)
	}
	return x.gather(ctx, gathered, true)
}

// gather waits for the candidates and returns the local description. With
// partial, it returns what has been gathered when gatherTimeout runs out: a
// STUN or TURN server that does not answer holds gathering up for longer
// (pion gives up on a STUN query after 5 s, on a TURN allocation after ~8 s).
func (x *session) gather(ctx context.Context, gathered <-chan struct{}, partial bool) (string, error) {
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		if partial {
			x.srv.log.Info("offering the candidates gathered so far: a STUN or TURN server has not answered",
				"id", x.id, "within", gatherTimeout)
			break
		}
		return "", errors.New("gathering candidates took too long")
	case <-ctx.Done():
		return "", ctx.Err()
	case <-x.ctx.Done():
		return "", ErrClosed
	}
	return x.pc.LocalDescription().SDP, nil
}

// candidate is the kind of this end's candidate in the selected pair
// ("host", "srflx", "prflx", "relay"), "" until a pair is selected.
func (x *session) candidate() string {
	for _, s := range []*webrtc.RTPSender{x.sender, x.audioSender} {
		if s == nil {
			continue
		}
		if p, err := s.Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil && p.Local != nil {
			return p.Local.Typ.String()
		}
	}
	return ""
}

// close starts ending the session; done is closed once it has ended.
func (x *session) close() { x.cancel() }

// run sends frames once connected, until the session ends; then it closes
// the PeerConnection and calls release.
func (x *session) run() {
	defer x.srv.wg.Done()
	rtcpDone, audioRTCPDone := make(chan struct{}), make(chan struct{})
	if x.sender != nil {
		go x.readRTCP(x.sender, rtcpDone)
	} else {
		close(rtcpDone)
	}
	if x.audioSender != nil {
		go x.readRTCP(x.audioSender, audioRTCPDone)
	} else {
		close(audioRTCPDone)
	}
	defer func() {
		x.cancel()
		_ = x.pc.Close()
		<-rtcpDone
		<-audioRTCPDone
		x.srv.mu.Lock()
		delete(x.srv.sessions, x.id)
		if !x.publish {
			x.srv.sentEnded += x.bytes.Load() + x.audioBytes.Load()
		}
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
	if x.audioLocal != nil {
		audioDone := make(chan struct{})
		go x.sendAudio(audioDone)
		defer func() {
			x.cancel()
			<-audioDone
		}()
	}
	if x.track == nil { // sound alone
		<-x.ctx.Done()
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

// sendAudio sends the sound until the session ends. Its queue is the
// subscription's: a viewer whose link cannot keep up loses the oldest
// packets (counted as AudioDropped), and never holds up the encoder or
// another viewer. The sound hub closing ends the sound, not the session.
func (x *session) sendAudio(done chan struct{}) {
	defer close(done)
	sub, err := x.srv.cfg.Audio.Subscribe(x.viewer)
	if err != nil {
		x.srv.log.Info("WebRTC viewer has no sound", "id", x.id, "err", err)
		return
	}
	defer sub.Close()
	x.audioSub.Store(sub)
	w := newAudioWriter()
	for {
		select {
		case f := <-sub.Frames():
			ts, marker := w.timestamp(f)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, SequenceNumber: w.seq, Timestamp: ts}, Payload: f.Data}
			w.seq++
			if err := x.audioLocal.WriteRTP(&pkt); err != nil {
				if x.ctx.Err() != nil {
					return
				}
				continue
			}
			sub.Sent(len(f.Data))
			x.audioPackets.Add(1)
			x.audioBytes.Add(uint64(len(f.Data)))
		case <-sub.Done():
			return
		case <-x.ctx.Done():
			return
		}
	}
}

// audioWriter stamps one viewer's sound packets.
type audioWriter struct {
	seq     uint16
	ts0     uint32
	first   time.Time
	last    uint32
	started bool
}

func newAudioWriter() *audioWriter {
	return &audioWriter{seq: uint16(rand.Uint32()), ts0: rand.Uint32()}
}

// timestamp is f's RTP time at 48 kHz and whether it starts a talkspurt
// (the RTP marker: the first packet, and the first after a gap, such as
// left-out silence, a pause or a device switch).
//
// Like the picture's 90 kHz times (writer.timestamp), it comes from the
// capture time, so both tracks run on the one capture clock: pion's sender
// reports map each track's newest RTP time to the wall clock of its sending,
// and a packet is sent right after its capture and encoding on both tracks,
// so the browser, which lines the tracks up by those reports, plays a sound
// and a picture captured at the same instant together (give or take the
// difference of the two tracks' capture-to-send times: the sound's frame
// length, the picture's grab and encode time).
//
// The time is the previous one plus a whole number of frames, the number
// nearest to the capture clock's: a packet's timestamp then never differs
// from its frame length by a stray sample, which a receiver would conceal
// as a gap or an overlap, and capture jitter under half a frame changes
// nothing.
func (w *audioWriter) timestamp(f *media.Frame) (uint32, bool) {
	if !w.started {
		w.started, w.first, w.last = true, f.Captured, w.ts0
		return w.ts0, true
	}
	step := int64(f.Duration * opusRate / time.Second)
	if step <= 0 {
		step = opusRate / 50
	}
	clock := w.ts0 + uint32(f.Captured.Sub(w.first)*opusRate/time.Second)
	frames := (int64(int32(clock-w.last)) + step/2) / step
	if int32(clock-w.last) < 0 {
		frames = 0
	}
	frames = max(frames, 1) // a clock step back, or two packets in one frame: keep time moving
	w.last += uint32(frames * step)
	return w.last, frames > 1
}

// readRTCP reads the viewer's feedback on one sender, which also drives the
// interceptors (NACK responder, reports), and passes keyframe requests on,
// rate limited.
func (x *session) readRTCP(sender *webrtc.RTPSender, done chan struct{}) {
	defer close(done)
	var sound webrtc.SSRC // the sound's, on its sender; 0 on the picture's
	if sender == x.audioSender {
		if enc := sender.GetParameters().Encodings; len(enc) > 0 {
			sound = enc[0].SSRC
		}
	}
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				x.plis.Add(1)
				now := time.Now().UnixNano()
				if last := x.lastKey.Load(); x.track != nil && now-last >= int64(keyframeEvery) && x.lastKey.CompareAndSwap(last, now) {
					x.track.RequestKeyframe()
				}
			case *rtcp.TransportLayerNack:
				for _, n := range p.Nacks {
					x.nacks.Add(uint64(len(n.PacketList())))
				}
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if d := rtt(r, time.Now()); d > 0 {
						x.rtt.Store(int64(d))
					}
					if sound != 0 && r.SSRC == uint32(sound) {
						x.noteAudioLoss(r.FractionLost)
					}
				}
			}
		}
	}
}

// noteAudioLoss takes the fraction of the sound's packets (of 256) a
// receiver report says were lost since the one before: the loss rises to a
// report at once and falls by a quarter of the way each report (about a
// second apart), so the encoder's redundancy comes quickly and does not
// flap off between two bad seconds.
func (x *session) noteAudioLoss(fraction uint8) {
	pct := int32(fraction) * 100 / 256
	old := x.audioLoss.Load()
	if pct < old {
		pct = old - (old-pct+3)/4
	}
	x.audioLoss.Store(pct)
}

func (x *session) stats() SessionStats {
	st := SessionStats{ID: x.id, Viewer: x.viewer, Codec: x.codec.codec, State: x.state.Load().(webrtc.PeerConnectionState).String(),
		Frames: x.frames.Load(), Bytes: x.bytes.Load(), Packets: x.packets.Load(), NACKs: x.nacks.Load(), PLIs: x.plis.Load()}
	if sub := x.sub.Load(); sub != nil {
		st.Skipped = sub.Stats().Dropped
	}
	st.Thinned = x.thinned.Load()
	st.Audio = x.audioLocal != nil
	st.AudioPackets, st.AudioBytes = x.audioPackets.Load(), x.audioBytes.Load()
	if sub := x.audioSub.Load(); sub != nil {
		st.AudioDropped = sub.Stats().Dropped
	}
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
			d := rtp.PlayoutDelayExtension{} // show each frame at once
			if x.audioLocal != nil {
				d.MaxDelay = uint16(syncDelay / (10 * time.Millisecond)) // room to wait for the sound
			}
			w.ext, _ = d.Marshal()
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
	w.budget.refill(est * thinHeadroom / 8)
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
	// A keyframe made on request on a still screen re-encodes the picture
	// held since the screen last changed, and carries its old capture time:
	// it counts as captured now. Otherwise the sender reports, which map the
	// newest RTP time to the time it was sent, would put every later frame
	// that far in the past, and a browser lining the sound up with the
	// picture would hold the sound back by as much.
	if now := time.Now(); f.Keyframe && now.Sub(captured) > staleKeyframe {
		captured = now
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

// rtt is the round trip a receiver report tells (RFC 3550 6.4.1: now, less
// the sender report it answers, less the time the receiver held it), or 0
// when it answers none.
func rtt(r rtcp.ReceptionReport, now time.Time) time.Duration {
	if r.LastSenderReport == 0 {
		return 0
	}
	// The middle 32 bits of the NTP time: seconds and fractions in 1/65536 s.
	ntp := uint64(now.Unix()+2208988800)<<16 | uint64(now.Nanosecond())*65536/1e9&0xffff
	d := uint32(ntp) - r.LastSenderReport - r.Delay
	if int32(d) < 0 {
		return 0
	}
	return time.Duration(d) * time.Second / 65536
}
