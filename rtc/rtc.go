// Package rtc serves viewers over WebRTC: one PeerConnection per viewer,
// fed from encoded frames shared by every viewer and packetized per viewer.
package rtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// PlayoutDelayURI is the RTP header extension that tells the receiver how
// long it may buffer; rtc sends min = max = 0 (render at once) on a picture
// without sound. Chromium honours it only when max ≤ 500 ms.
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// syncDelay is the playout delay's max on a picture that has sound beside
// it: room for the browser to hold the picture back until the sound,
// which arrives later (capture, Opus frames, the audio jitter buffer), is
// played in step with it. With max 0 Chromium renders each frame at once
// and gives up lip sync: the bench measured the sound 60 ms behind then,
// and 16 ms with 150 ms of room.
const syncDelay = 200 * time.Millisecond

// Errors of Offer and End.
var (
	ErrNoSession = errors.New("no such WebRTC session")
	ErrBadOffer  = errors.New("bad SDP offer")
	ErrClosed    = errors.New("WebRTC server closed")
)

// Track is one encoding viewers can watch: its fan-out (delivering in order
// from a keyframe) and a way to ask its encoder for a keyframe. A
// *pipeline.Track is one.
type Track interface {
	Subscribe(info fanout.SubscriberInfo) (*fanout.Subscriber[*media.Frame], error)
	RequestKeyframe()
	// SetBitrate sets the encoder's target: what the room's links carry.
	SetBitrate(bps int)
}

// AudioTrack is the sound viewers can hear: a fan-out of encoded packets
// (Opus, 48 kHz stereo), each a *media.Frame with its capture time and
// Duration. A *pipeline.AudioTrack is one.
type AudioTrack interface {
	Subscribe(info fanout.SubscriberInfo) (*fanout.Subscriber[*media.Frame], error)
	// SetPacketLoss tells the encoder the worst loss a listener reports,
	// in percent, so that it adds redundancy (in-band FEC) as it rises.
	SetPacketLoss(percent int)
}

// Viewer says who is behind a session.
type Viewer = fanout.SubscriberInfo

// Config sets up a Server; zero values pick the defaults.
type Config struct {
	// Tracks are the encodings on offer, one per codec (H.264 now; VP8
	// later). A viewer gets the first of them its offer lists.
	Tracks map[media.Codec]Track
	// Audio, if not nil, is the sound: an Opus track beside the picture in
	// each PeerConnection whose offer receives audio, in the same media
	// stream, so the browser plays them in step. An offer with audio and no
	// video gets a session with sound alone.
	Audio AudioTrack
	// UDPPort is where every viewer's media goes over UDP (ICE UDP mux on
	// all interfaces), the HTTP port's number; 0 picks a free port per interface.
	UDPPort int
	// TCP, if not nil, brings ICE-TCP connections (RFC 4571 framing), e.g.
	// demultiplexed off the HTTP listener. The server closes it.
	TCP net.Listener
	// Loopback offers loopback candidates too (tests; a viewer on this computer).
	Loopback bool
	// PaceRate caps each viewer's send rate in bit/s, so a burst (an IDR)
	// goes out spread over time rather than filling the shared UDP socket's
	// buffer at once; 0 means 30 Mbit/s. A viewer whose link carries less
	// (its bandwidth estimate) is paced at PaceFactor times that estimate.
	PaceRate int
	// MinBitrate and MaxBitrate bound the target the server sets on each
	// track's encoder from its viewers' bandwidth estimates (the median's
	// roomShare): 300 kbit/s and 3 Mbit/s when 0.
	MinBitrate, MaxBitrate int
	Logger                 *slog.Logger
}

// Server holds one pion API (one UDP socket, one ICE-TCP listener) for
// every viewer's PeerConnection.
type Server struct {
	cfg    Config
	log    *slog.Logger
	api    *webrtc.API
	udp    ice.UDPMux
	tcp    ice.TCPMux
	codecs []codecInfo // those of cfg.Tracks, in preference order

	mu        sync.Mutex
	sessions  map[string]*session
	bwe       cc.BandwidthEstimator // the newest PeerConnection's, handed over under mu (see newSession)
	targets   map[media.Codec]int   // the bitrate each track was last given
	loss      int                   // the packet loss the sound was last given, in percent
	stop      chan struct{}         // closed by Close: the room loop ends
	closed    bool
	wg        sync.WaitGroup
	sentEnded uint64 // media bytes sent to viewers whose sessions have ended (SentBytes)
}

// codecInfo is how one media.Codec goes over RTP.
type codecInfo struct {
	codec  media.Codec
	params webrtc.RTPCodecParameters
}

var feedback = []webrtc.RTCPFeedback{
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: webrtc.TypeRTCPFBTransportCC},
}

// knownCodecs are the codecs rtc can packetize, in preference order.
var knownCodecs = []codecInfo{
	{media.H264, webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		// Constrained Baseline, level 3.1 announced (the level is what
		// browsers decode at least; codec/h264 sets its own in the SPS).
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: feedback}}},
	{media.VP8, webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: feedback}}},
}

// opusCodec is how the sound goes over RTP: RFC 7587's Opus, stereo, in
// packets of 10 ms or more, with in-band FEC.
var opusCodec = webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
	MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}

// New sets up the server: the UDP mux listens on cfg.UDPPort at once.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PaceRate <= 0 {
		cfg.PaceRate = 30_000_000
	}
	if cfg.MinBitrate <= 0 {
		cfg.MinBitrate = 300_000
	}
	if cfg.MaxBitrate <= 0 {
		cfg.MaxBitrate = 3_000_000
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: map[string]*session{}, targets: map[media.Codec]int{}, stop: make(chan struct{})}
	m := &webrtc.MediaEngine{}
	for _, c := range knownCodecs {
		if cfg.Tracks[c.codec] == nil {
			continue
		}
		if err := m.RegisterCodec(c.params, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("registering %s: %w", c.codec, err)
		}
		s.codecs = append(s.codecs, c)
	}
	if len(s.codecs) == 0 {
		return nil, errors.New("rtc: no track to send")
	}
	if cfg.Audio != nil {
		if err := m.RegisterCodec(opusCodec, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("registering opus: %w", err)
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: PlayoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	// The send side only: a bandwidth estimate per viewer from its TWCC
	// feedback (Google congestion control, without pion's pacer: each
	// session paces itself), a NACK responder with its packet cache, sender
	// reports, and transport-wide sequence numbers for the viewer's TWCC.
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(initialEstimate), gcc.SendSideBWEMinBitrate(minEstimate),
			gcc.SendSideBWEMaxBitrate(cfg.PaceRate), gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	})
	if err != nil {
		return nil, err
	}
	// Called while api.NewPeerConnection builds the interceptors, which
	// newSession does under s.mu: the estimator is that session's.
	bwe.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { s.bwe = e })
	reg.Add(bwe)
	responder, err := nack.NewResponderInterceptor(nack.ResponderSize(1024))
	if err != nil {
		return nil, err
	}
	reg.Add(responder)
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	// Transport-wide sequence numbers on the picture only: the sound's 128
	// kbit/s is little to the estimate, and with them each viewer's browser
	// sent a TWCC report for the sound alone about every 100 ms (on a still
	// screen), each a wake-up and a congestion-control update here.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	twccExt, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(twccExt)

	logs := &pionLogs{cfg.Logger}
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(logs.NewLogger("udpmux")),
		// A 4 MB send buffer: many viewers' paced packets share it.
		ice.UDPMuxFromPortWithWriteBufferSize(4 << 20), ice.UDPMuxFromPortWithReadBufferSize(1 << 20)}
	if cfg.Loopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	// IPv6 link-local addresses are left out: no browser on the LAN needs
	// them (it has IPv4 or a routable IPv6 address, or mDNS), and one that
	// has just come up cannot be bound for a second or two (duplicate address
	// detection), which would leave the whole share without WebRTC.
	opts = append(opts, ice.UDPMuxFromPortWithIPFilter(usableIP))
	udpNets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	udp, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
	if err != nil {
		// An IPv6 address still tentative, or one that cannot be bound for
		// another reason: IPv4 alone is enough on a LAN.
		v4, err4 := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, append(opts, ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4))...)
		if err4 != nil {
			return nil, fmt.Errorf("listening for WebRTC on UDP port %d: %w", cfg.UDPPort, err)
		}
		cfg.Logger.Warn("WebRTC over IPv4 only", "why", err)
		udp, udpNets = v4, udpNets[:1]
	}
	s.udp = udp
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEUDPMux(udp)
	se.SetIPFilter(usableIP)
	networks := udpNets
	if cfg.TCP != nil {
		s.tcp = webrtc.NewICETCPMux(logs.NewLogger("tcpmux"), cfg.TCP, 32)
		se.SetICETCPMux(s.tcp)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	// A LAN needs no STUN or TURN: host candidates, and the viewers' mDNS
	// ones resolved. A publish session may be given the media server's
	// STUN and TURN servers (its PeerConnection's configuration): pion
	// gathers srflx and relay candidates on sockets of their own, beside
	// the muxes' host candidates (pion/ice gather.go), so the same settings
	// serve it. A viewer gone silent is dropped within 10 s.
	se.SetICETimeouts(4*time.Second, 10*time.Second, 2*time.Second)
	s.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	s.wg.Add(1)
	go s.room()
	return s, nil
}

// roomShare is the part of the median viewer's estimate the shared encoder
// aims at: the rest is room for bursts (a new screen) and for audio.
const roomShare = 0.7

// room sets each track's bitrate, once a second, from what its viewers'
// links carry: roomShare of the median estimate, within MinBitrate and
// MaxBitrate. The median, so that one viewer on a slow link does not lower
// everybody's picture (it is sent fewer frames instead, see writer.thin),
// while a link the whole room shares, once full, lowers it for all.
func (s *Server) room() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		est := map[media.Codec][]int{}
		loss := 0
		s.mu.Lock()
		for _, x := range s.sessions {
			if x.sub.Load() != nil && !x.publish { // a viewer, connected and watching: a media server's link is not the room's
				est[x.codec.codec] = append(est[x.codec.codec], x.estimate())
			}
			if x.audioSub.Load() != nil { // a media server too: its readers hear what reaches it
				loss = max(loss, int(x.audioLoss.Load()))
			}
		}
		s.mu.Unlock()
		// The sound is coded for the worst listener: its redundancy costs
		// the others a little of the same bitrate, not a lost syllable.
		if loss != s.loss && s.cfg.Audio != nil {
			s.loss = loss
			s.cfg.Audio.SetPacketLoss(loss)
			s.log.Debug("WebRTC sound coded for packet loss", "percent", loss)
		}
		for codec, e := range est {
			target := min(s.cfg.MaxBitrate, max(s.cfg.MinBitrate, int(roomShare*float64(median(e)))))
			// Small moves are noise: only a change of a tenth or more is passed on.
			if last := s.targets[codec]; last == 0 || math.Abs(float64(target-last)) >= float64(last)/10 {
				s.targets[codec] = target
				s.cfg.Tracks[codec].SetBitrate(target)
				s.log.Debug("WebRTC bitrate", "codec", codec, "target", target, "viewers", len(e))
			}
		}
	}
}

// median returns the middle of v (the upper middle of an even count); v is sorted.
func median(v []int) int {
	slices.Sort(v)
	return v[len(v)/2]
}

// Codecs returns the codecs on offer, in preference order.
func (s *Server) Codecs() []media.Codec {
	out := make([]media.Codec, len(s.codecs))
	for i, c := range s.codecs {
		out[i] = c.codec
	}
	return out
}

// badOffer wraps ErrBadOffer with the reason.
func badOffer(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadOffer, fmt.Sprintf(format, a...))
}

// Offer answers a viewer's SDP offer with a new PeerConnection and returns
// the answer (with every host candidate in it) and the session's ID. The
// PeerConnection lives until ctx ends, End is called, the viewer goes away
// or the server closes; release is called once when it is gone, also when
// Offer fails.
func (s *Server) Offer(ctx context.Context, offer string, v Viewer, release func()) (answer, id string, err error) {
	if release == nil {
		release = func() {}
	}
	codec, err := chooseCodec(offer, s.cfg.Tracks)
	audio := s.cfg.Audio != nil && offersOpus(offer)
	if err != nil && !(audio && errors.Is(err, errNoVideo)) {
		release()
		return "", "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	var c codecInfo
	for _, k := range s.codecs {
		if k.codec == codec {
			c = k
		}
	}
	sess, err := s.newSession(v, c, audio, false, nil, release)
	if err != nil {
		release()
		return "", "", err
	}
	answer, err = sess.negotiate(ctx, offer)
	if err != nil {
		sess.close()
		<-sess.done
		return "", "", err
	}
	if v.Since.IsZero() {
		v.Since = time.Now()
	}
	stop := context.AfterFunc(ctx, sess.close)
	go func() {
		<-sess.done
		stop()
	}()
	s.log.Info("WebRTC viewer", "id", sess.id, "addr", v.Addr, "codec", c.codec, "audio", audio)
	return answer, sess.id, nil
}

// End closes a session (WHEP's DELETE) and waits until its PeerConnection is gone.
func (s *Server) End(id string) error {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return ErrNoSession
	}
	sess.close()
	<-sess.done
	return nil
}

// SentBytes counts the bytes of media (RTP payloads) sent to viewers so far:
// the sessions' own counters, kept on when a session ends.
func (s *Server) SentBytes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.sentEnded
	for _, x := range s.sessions {
		if !x.publish {
			n += x.bytes.Load() + x.audioBytes.Load()
		}
	}
	return n
}

// Sessions returns the number of open viewers' sessions (a Publisher's is
// not one).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.sessions {
		if !x.publish {
			n++
		}
	}
	return n
}

// SessionStats is one session's counters.
type SessionStats struct {
	ID      string      `json:"id"`
	Viewer  Viewer      `json:"viewer"`
	Codec   media.Codec `json:"codec"`
	State   string      `json:"state"`
	Frames  uint64      `json:"frames"`
	Bytes   uint64      `json:"bytes"`
	Packets uint64      `json:"packets"`
	NACKs   uint64      `json:"nacks"`   // packets the viewer asked to have again
	PLIs    uint64      `json:"plis"`    // keyframe requests (PLI and FIR)
	Skipped uint64      `json:"skipped"` // frames lost to a full queue (the viewer then restarts at a keyframe)
	Thinned uint64      `json:"thinned"` // droppable frames left out to fit the viewer's link
	// Audio says the session carries sound; AudioPackets and AudioBytes
	// count what was sent of it, AudioDropped the packets lost to a full
	// queue (a listener that fell 200 ms behind).
	Audio        bool   `json:"audio"`
	AudioPackets uint64 `json:"audio_packets"`
	AudioBytes   uint64 `json:"audio_bytes"`
	AudioDropped uint64 `json:"audio_dropped"`
	// Estimate is what the viewer's link is estimated to carry (bit/s),
	// from its transport-wide congestion feedback.
	Estimate int `json:"estimate"`
}

// Stats returns every viewer's session's counters.
func (s *Server) Stats() []SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionStats, 0, len(s.sessions))
	for _, sess := range s.sessions {
		if !sess.publish {
			out = append(out, sess.stats())
		}
	}
	return out
}

// Close closes every session and the sockets, and waits for all of it.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.close()
	}
	s.wg.Wait()
	err := s.udp.Close()
	if s.tcp != nil {
		if e := s.tcp.Close(); err == nil {
			err = e
		}
	}
	return err
}

// usableIP reports whether WebRTC offers ip to viewers: any but an IPv6
// link-local address.
func usableIP(ip net.IP) bool { return ip.To4() != nil || !ip.IsLinkLocalUnicast() }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
