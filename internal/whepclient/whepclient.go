// Package whepclient is a WebRTC viewer for tests: a pion PeerConnection
// that receives one H.264 video track and hands back whole frames, and with
// Options.Audio an Opus track whose packets it hands back as they come.
package whepclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// PlayoutDelayURI is the header extension the server should send.
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// Options tune a Client.
type Options struct {
	TCPOnly bool // gather and use ICE-TCP candidates only
	Codecs  []webrtc.RTPCodecParameters
	// Audio receives sound too (Opus); NoVideo receives sound alone.
	Audio, NoVideo bool
	// ICEServers are STUN and TURN servers to gather candidates from.
	ICEServers []webrtc.ICEServer
}

// AudioPacket is one received Opus packet.
type AudioPacket struct {
	Data      []byte
	Timestamp uint32 // RTP, 48 kHz
	Seq       uint16
	Marker    bool
	At        time.Time
}

// Opus is the sound codec a browser offers.
var Opus = webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
	MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}

// Frame is one received access unit.
type Frame struct {
	Data         []byte // Annex B
	Keyframe     bool   // it has an IDR slice
	Timestamp    uint32 // RTP
	PlayoutDelay *rtp.PlayoutDelayExtension
	At           time.Time // when its last packet arrived
	// Sent is the sender's wall-clock time for Timestamp, from the newest
	// RTCP sender report (zero before the first). The sender's clock maps
	// RTP time to wall-clock time at the first packet of the frame it sent
	// last; on the same machine, At minus Sent is what the frame took from
	// the sender's hands to here.
	Sent time.Time
}

// report is a sender report's mapping of RTP time to the sender's clock.
type report struct {
	ntp time.Time
	rtp uint32
}

// Client is one viewer.
type Client struct {
	PC      *webrtc.PeerConnection
	Frames  chan Frame
	Audio   chan AudioPacket // with Options.Audio; the newest 1024 if the test does not read
	Bytes   atomic.Uint64    // RTP payload bytes received
	Packets atomic.Uint64
	track   atomic.Pointer[webrtc.TrackRemote]
	sr      atomic.Pointer[report] // the video's newest sender report, for Frame.Sent
	done    chan struct{}
	once    sync.Once
	// resource is the WHEP session's URL, when Connect made it.
	resource string
	// AudioSR and VideoSR are the newest sender reports of each track.
	AudioSR, VideoSR atomic.Pointer[rtcp.SenderReport]
	// AudioStreamID and VideoStreamID are the media stream IDs the tracks
	// arrived in, once they have.
	AudioStreamID, VideoStreamID atomic.Value
}

// H264 is the codec a browser offers first.
var H264 = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
	MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}}

// New makes a viewer and returns it with its offer (all candidates in it).
func New(opt Options) (*Client, string, error) {
	m := &webrtc.MediaEngine{}
	if opt.Codecs == nil {
		opt.Codecs = []webrtc.RTPCodecParameters{H264}
	}
	for _, c := range opt.Codecs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, "", err
		}
	}
	if opt.Audio || opt.NoVideo {
		if err := m.RegisterCodec(Opus, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, "", err
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: PlayoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, "", err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, "", err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(0) // ice.MulticastDNSModeDisabled
	if opt.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: opt.ICEServers})
	if err != nil {
		return nil, "", err
	}
	c := &Client{PC: pc, Frames: make(chan Frame, 256), Audio: make(chan AudioPacket, 1024), done: make(chan struct{})}
	var kinds []webrtc.RTPCodecType
	if !opt.NoVideo {
		kinds = append(kinds, webrtc.RTPCodecTypeVideo)
	}
	if opt.Audio || opt.NoVideo {
		kinds = append(kinds, webrtc.RTPCodecTypeAudio)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, "", err
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			c.AudioStreamID.Store(t.StreamID())
			go c.readRTCP(r, &c.AudioSR, nil)
			go c.readAudio(t)
			return
		}
		c.VideoStreamID.Store(t.StreamID())
		c.track.Store(t)
		go c.readRTCP(r, &c.VideoSR, &c.sr)
		go c.read(t, r)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		_ = pc.Close()
		return nil, "", errors.New("gathering took too long")
	}
	return c, pc.LocalDescription().SDP, nil
}

// Answer takes the server's answer.
func (c *Client) Answer(sdp string) error {
	return c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

// PLI asks the server for a keyframe.
func (c *Client) PLI() error {
	t := c.track.Load()
	if t == nil {
		return errors.New("no track yet")
	}
	return c.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

// Done is closed when the track ends (the server closed the connection).
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the PeerConnection; a client that Connect made also ends
// its WHEP session (DELETE, at most 2 s).
func (c *Client) Close() error {
	if c.resource != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.resource, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	return c.PC.Close()
}

// Connect makes a viewer and signals it with WHEP: it POSTs the offer to
// whepURL (which carries the token, e.g. http://host:port/whep?t=…) and
// takes the answer. It returns once the answer is set, not once connected.
func Connect(ctx context.Context, whepURL string, opt Options) (*Client, error) {
	c, offer, err := New(opt)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, whepURL, strings.NewReader(offer))
	if err != nil {
		_ = c.PC.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		_ = c.PC.Close()
		return nil, fmt.Errorf("posting the offer: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusCreated {
		_ = c.PC.Close()
		return nil, fmt.Errorf("posting the offer: %s %s (%v)", resp.Status, bytes.TrimSpace(answer), err)
	}
	if loc, err := resp.Location(); err == nil {
		u := *loc
		u.RawQuery = ""
		c.resource = u.String()
	}
	if err := c.Answer(string(answer)); err != nil {
		_ = c.PC.Close()
		return nil, fmt.Errorf("taking the answer: %w", err)
	}
	return c, nil
}

// readRTCP reads what the sender reports on r (which also drives the
// interceptors) and keeps the newest sender report in to, and its clock in
// clock if not nil.
func (c *Client) readRTCP(r *webrtc.RTPReceiver, to *atomic.Pointer[rtcp.SenderReport], clock *atomic.Pointer[report]) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				to.Store(sr)
				if clock != nil {
					clock.Store(&report{ntp: ntpTime(sr.NTPTime), rtp: sr.RTPTime})
				}
			}
		}
	}
}

// readAudio hands the sound's packets to Audio until the track ends.
func (c *Client) readAudio(t *webrtc.TrackRemote) {
	defer c.once.Do(func() { close(c.done) })
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		a := AudioPacket{Data: bytes.Clone(p.Payload), Timestamp: p.Timestamp, Seq: p.SequenceNumber, Marker: p.Marker, At: time.Now()}
		select {
		case c.Audio <- a:
		default:
		}
	}
}

// ntpTime converts a 64-bit NTP timestamp to a time.Time.
func ntpTime(t uint64) time.Time {
	const unixOffset = 2208988800 // seconds from 1900 to 1970
	sec := int64(t>>32) - unixOffset
	frac := (t & 0xffffffff) * 1e9 >> 32
	return time.Unix(sec, int64(frac))
}

// sentAt maps RTP time ts to the sender's clock through the newest report.
func (c *Client) sentAt(ts uint32, clockRate uint32) time.Time {
	r := c.sr.Load()
	if r == nil || clockRate == 0 {
		return time.Time{}
	}
	d := int64(int32(ts - r.rtp))
	return r.ntp.Add(time.Duration(d * int64(time.Second) / int64(clockRate)))
}

func (c *Client) read(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	defer c.once.Do(func() { close(c.done) })
	var (
		au    bytes.Buffer
		dep   codecs.H264Packet
		delay *rtp.PlayoutDelayExtension
	)
	extID := 0
	for _, h := range r.GetParameters().HeaderExtensions {
		if h.URI == PlayoutDelayURI {
			extID = h.ID
		}
	}
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		c.Packets.Add(1)
		c.Bytes.Add(uint64(len(p.Payload)))
		if extID != 0 {
			if b := p.GetExtension(uint8(extID)); b != nil {
				var d rtp.PlayoutDelayExtension
				if d.Unmarshal(b) == nil {
					delay = &d
				}
			}
		}
		nal, err := dep.Unmarshal(p.Payload)
		if err == nil {
			au.Write(nal)
		}
		if !p.Marker {
			continue
		}
		data := bytes.Clone(au.Bytes())
		au.Reset()
		f := Frame{Data: data, Keyframe: hasIDR(data), Timestamp: p.Timestamp, PlayoutDelay: delay, At: time.Now(),
			Sent: c.sentAt(p.Timestamp, t.Codec().ClockRate)}
		select {
		case c.Frames <- f:
		default: // the test is not reading: keep the newest only
		}
	}
}

// NALTypes lists the NAL unit types of an Annex B access unit.
func NALTypes(au []byte) []int {
	var out []int
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			out = append(out, int(au[i+3]&0x1f))
			i += 3
		}
	}
	return out
}

func hasIDR(au []byte) bool {
	for _, t := range NALTypes(au) {
		if t == 5 {
			return true
		}
	}
	return false
}
