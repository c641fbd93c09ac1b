package web

import "time"

// PublishStatus is the share's publishing to a media server (WHIP), as
// /api/status shows it to the presenter.
type PublishStatus struct {
	State    string    `json:"state"` // connecting, live, reconnecting, stopped
	URL      string    `json:"url"`   // the WHIP endpoint, without query or credentials
	View     string    `json:"view,omitempty"`
	Error    string    `json:"error,omitempty"` // why it is reconnecting
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
	Bitrate  int       `json:"bitrate"` // bit/s while live
	FPS      float64   `json:"fps"`
	RTTMs    float64   `json:"rtt_ms"`
	Frames   uint64    `json:"frames"`
	Bytes    uint64    `json:"bytes"`
	// The sound's packets sent, and those lost to a full queue.
	AudioPackets uint64 `json:"audio_packets"`
	AudioDropped uint64 `json:"audio_dropped"`
	// The STUN and TURN servers the media server named (URLs only, never
	// their credentials), and while live the kind of candidate carrying the
	// stream: host, srflx, prflx or relay.
	ICEServers []string `json:"ice_servers,omitempty"`
	Candidate  string   `json:"candidate,omitempty"`
}

// SetPublish sets where the publishing status comes from (nil: none).
func (s *Server) SetPublish(status func() PublishStatus) {
	if status == nil {
		s.publish.Store(nil)
		return
	}
	s.publish.Store(&status)
}

// Publishing returns the publishing status, or nil when not publishing.
func (s *Server) Publishing() *PublishStatus {
	f := s.publish.Load()
	if f == nil {
		return nil
	}
	st := (*f)()
	return &st
}
