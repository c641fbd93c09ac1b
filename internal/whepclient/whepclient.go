// Package whepclient is a WebRTC viewer for tests: a pion PeerConnection
// that receives one H.264 video track and hands back whole frames, and with
// Options.Audio an Opus track whose packets it hands back as they come.
package whepclient

import (
	"bytes"
	"errors"
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
	At           time.Time
}

// Client is one viewer.
type Client struct {
	PC      *webrtc.PeerConnection
	Frames  chan Frame
	Audio   chan AudioPacket // with Options.Audio; the newest 1024 if the test does not read
	Bytes   atomic.Uint64    // RTP payload bytes received
	Packets atomic.Uint64
	track   atomic.Pointer[webrtc.TrackRemote]
	done    chan struct{}
	once    sync.Once
	// AudioSR and VideoSR are the newest sender reports of each track
	// (*rtcp.SenderReport), with the time they arrived (AudioSRAt, VideoSRAt).
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
	if opt.Audio {
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
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
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
		sr := &c.VideoSR
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			sr = &c.AudioSR
		}
		go readReports(r, sr)
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			c.AudioStreamID.Store(t.StreamID())
			go c.readAudio(t)
			return
		}
		c.VideoStreamID.Store(t.StreamID())
		c.track.Store(t)
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

// Close closes the PeerConnection.
func (c *Client) Close() error { return c.PC.Close() }

// readReports keeps the newest sender report that arrives on r.
func readReports(r *webrtc.RTPReceiver, to *atomic.Pointer[rtcp.SenderReport]) {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				to.Store(sr)
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
		f := Frame{Data: data, Keyframe: hasIDR(data), Timestamp: p.Timestamp, PlayoutDelay: delay, At: time.Now()}
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
