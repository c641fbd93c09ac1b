package web

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// AudioQueue is the audio hub's Options.Queue: a listener may fall 16
// chunks (160 ms at 10 ms a chunk) behind before it loses the oldest.
const AudioQueue = 16

// AudioPrepare is the audio hub's Options.Prepare: it publishes a numbered
// copy of c with its PCM as little-endian bytes (Wire), built once for every
// listener; c itself is left as it was.
func AudioPrepare(c *media.AudioChunk, seq uint64) *media.AudioChunk {
	nc := *c
	nc.Seq = seq
	nc.Wire = make([]byte, 2*len(c.PCM))
	for i, v := range c.PCM {
		binary.LittleEndian.PutUint16(nc.Wire[2*i:], uint16(v))
	}
	return &nc
}

// audioReady answers 503 when sound is not shared now, and says why.
func (s *Server) audioReady(w http.ResponseWriter) bool {
	switch {
	case s.cfg.Audio == nil || !s.Mode().Audio():
		http.Error(w, "sound is not shared", http.StatusServiceUnavailable)
		return false
	case s.meta.Load().AudioDevice == "":
		http.Error(w, "no audio device is chosen", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// handleWAV streams sound as an endless WAV file, for <audio> and players.
func (s *Server) handleWAV(w http.ResponseWriter, r *http.Request) {
	if !s.audioReady(w) {
		return
	}
	if r.Method == http.MethodHead { // answer without opening the device
		w.Header().Set("Content-Type", "audio/wav")
		return
	}
	l, err := s.cfg.Audio.Subscribe(fanout.SubscriberInfo{ID: viewerID(r), Addr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		http.Error(w, "sharing has stopped", http.StatusServiceUnavailable)
		return
	}
	defer l.Close()
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("Transfer-Encoding", "identity") // endless: no chunked framing
	w.WriteHeader(http.StatusOK)
	write := s.streamWriter(w)
	rate, channels := 0, 0
	for {
		select {
		case c := <-l.Frames():
			if rate == 0 {
				rate, channels = c.Rate, c.Channels
				if !write(wavHeader(rate, channels)) {
					return
				}
			} else if c.Rate != rate || c.Channels != channels {
				return // a new device with another format: the player reconnects
			}
			if !write(c.Wire) {
				return
			}
			l.Sent(len(c.Wire))
		case <-l.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// wavHeader is a 44-byte WAV header whose sizes say "as long as it goes".
func wavHeader(rate, channels int) []byte {
	h := make([]byte, 44)
	le := binary.LittleEndian
	copy(h, "RIFF")
	le.PutUint32(h[4:], 0xFFFFFFFF)
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1) // PCM
	le.PutUint16(h[22:], uint16(channels))
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(rate*channels*2))
	le.PutUint16(h[32:], uint16(channels*2))
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], 0xFFFFFFFF-36)
	return h
}

// audioFormat is the first (text) message on /ws/audio and follows a change of device.
type audioFormat struct {
	Type     string `json:"type"` // "format"
	Rate     int    `json:"rate"`
	Channels int    `json:"channels"`
	Encoding string `json:"encoding"` // "s16le"
}

// handleWSAudio streams sound over a WebSocket for the page's Web Audio
// player: a text message with the format, then one binary message per chunk:
// a 4-byte little-endian sequence number and the PCM.
func (s *Server) handleWSAudio(w http.ResponseWriter, r *http.Request) {
	if !s.audioReady(w) {
		return
	}
	c, done := s.acceptSocket(w, r)
	if c == nil {
		return
	}
	defer done()
	l, err := s.cfg.Audio.Subscribe(fanout.SubscriberInfo{ID: viewerID(r), Addr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		return
	}
	defer l.Close()
	ctx := c.CloseRead(r.Context()) // we only send; this notices the peer closing
	rate, channels := 0, 0
	buf := make([]byte, 0, 4096)
	for {
		select {
		case ch := <-l.Frames():
			wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
			if ch.Rate != rate || ch.Channels != channels {
				rate, channels = ch.Rate, ch.Channels
				msg, _ := json.Marshal(audioFormat{Type: "format", Rate: rate, Channels: channels, Encoding: "s16le"})
				if err := c.Write(wctx, websocket.MessageText, msg); err != nil {
					cancel()
					return
				}
			}
			buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(ch.Seq))
			buf = append(buf, ch.Wire...)
			err := c.Write(wctx, websocket.MessageBinary, buf)
			cancel()
			if err != nil {
				return
			}
			l.Sent(len(ch.Wire))
			s.bytesSent.Add(uint64(len(buf)))
		case <-l.Done():
			return // sharing stopped: CloseNow, deferred; a polite close could wait 5 s for the peer
		case <-ctx.Done():
			return
		}
	}
}

// AudioStatus is the sound part of /api/status.
type AudioStatus struct {
	State     string `json:"state"` // off (not shared), none (no device), waiting, on, error
	Device    string `json:"device"`
	Error     string `json:"error,omitempty"`
	Listeners int    `json:"listeners"`
	Rate      int    `json:"rate,omitempty"`
	Channels  int    `json:"channels,omitempty"`
	Chunks    uint64 `json:"chunks"`
	Dropped   uint64 `json:"dropped"`
}

func (s *Server) audioStatus() AudioStatus {
	m := s.meta.Load()
	if s.cfg.Audio == nil || !s.Mode().Audio() {
		return AudioStatus{State: "off"}
	}
	st := s.cfg.Audio.Stats()
	as := AudioStatus{State: "waiting", Device: m.AudioName, Listeners: st.Subscribers, Chunks: st.Frames, Dropped: st.Dropped}
	switch {
	case m.AudioDevice == "":
		as.State = "none"
	case st.Err != nil:
		as.State, as.Error = "error", st.Err.Error()
	case st.Last != nil:
		as.State, as.Rate, as.Channels = "on", st.Last.Rate, st.Last.Channels
	}
	return as
}
