package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// MaxOfferSize is the largest SDP offer POST /whep reads; a browser's is a few KB.
const MaxOfferSize = 64 << 10

// WHEP serves WebRTC viewers behind POST /whep (draft-ietf-wish-whep). The
// engine wires package rtc in through it, so web needs no WebRTC stack.
type WHEP interface {
	// Offer answers an SDP offer and returns the session's ID. The session
	// ends when ctx ends or on End; release is called exactly once, when
	// its connection is gone (also when Offer fails). An offer that cannot
	// be answered gets an error wrapping ErrBadOffer.
	Offer(ctx context.Context, offerSDP string, v fanout.SubscriberInfo, release func()) (answerSDP, id string, err error)
	// End ends a session; ErrNoSession when there is none by that ID.
	End(id string) error
	// Sessions counts the sessions.
	Sessions() int
	// SentBytes counts the media bytes sent to viewers so far.
	SentBytes() uint64
}

// Errors a WHEP returns (wrapped) for what the viewer got wrong.
var (
	ErrBadOffer  = errors.New("bad offer")
	ErrNoSession = errors.New("no such session")
)

// WebRTCStatus is what /api/status says of WebRTC.
type WebRTCStatus struct {
	Available bool     `json:"available"`
	Why       string   `json:"why,omitempty"` // why not, when not available
	Sessions  int      `json:"sessions"`
	Codecs    []string `json:"codecs"`
	// Audio is the sound's codec ("opus") when WebRTC sessions carry the
	// sound (an offer that receives audio gets it, in the picture's media
	// stream), "" when the page is to play /ws/audio beside them.
	Audio string `json:"audio,omitempty"`
}

type webrtcState struct {
	whep   WHEP
	codecs []string
	video  []*fanout.Hub[*media.Frame] // the WebRTC viewers' tracks, for the status's counters
	why    string
	audio  string // see WebRTCStatus.Audio
}

// SetWebRTC serves WHEP viewers through w in the given codecs (e.g. "h264").
//
// video are the tracks behind it, so that /api/status counts what WebRTC
// viewers get (capturing, fps, size) as it does the MJPEG ones'.
func (s *Server) SetWebRTC(w WHEP, codecs []string, video ...*fanout.Hub[*media.Frame]) {
	s.webrtc.Store(&webrtcState{whep: w, codecs: append([]string(nil), codecs...), video: video})
}

// SetWebRTCAudio says WebRTC sessions carry the sound, in codec (e.g.
// "opus"); call it after SetWebRTC. With sound over WebRTC, POST /whep is
// open in audio-only mode too (an offer without video gets sound alone).
func (s *Server) SetWebRTCAudio(codec string) {
	if st := s.webrtc.Load(); st != nil && st.whep != nil {
		n := *st
		n.audio = codec
		s.webrtc.Store(&n)
	}
}

// SetWebRTCUnavailable records why there is no WebRTC, for /api/status; POST /whep answers 503.
func (s *Server) SetWebRTCUnavailable(why string) { s.webrtc.Store(&webrtcState{why: why}) }

// ICETCP returns the listener of the ICE-TCP connections that arrive on the
// HTTP port (RFC 4571 framing, told apart from HTTP by their first bytes).
// Whoever takes it must accept from it, and may close it; Close closes it too.
func (s *Server) ICETCP() net.Listener { return s.demux.ice }

func (s *Server) webRTCStatus() WebRTCStatus {
	st := s.webrtc.Load()
	if st == nil {
		return WebRTCStatus{Why: "WebRTC is not set up in this build", Codecs: []string{}}
	}
	if st.whep == nil {
		return WebRTCStatus{Why: st.why, Codecs: []string{}}
	}
	return WebRTCStatus{Available: true, Sessions: st.whep.Sessions(), Codecs: st.codecs, Audio: st.audio}
}

// handleWHEP takes a WHEP offer. It lets in exactly who may watch an MJPEG
// stream, and the session holds its place (the viewer limit, Disconnect)
// for as long as its PeerConnection lives, not for this request's.
func (s *Server) handleWHEP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess := s.session(w, r)
	if sess == nil {
		return
	}
	state, sctx, err := s.viewers.Enter(sess, false)
	if err != nil {
		s.refuse(w, r, http.StatusServiceUnavailable, pageFull)
		return
	}
	if no, ok := notYet[state]; ok {
		s.refuse(w, r, no.code, no.page)
		return
	}
	st := s.webrtc.Load()
	if st == nil || st.whep == nil {
		why := "not set up"
		if st != nil {
			why = st.why
		}
		http.Error(w, "WebRTC is off: "+why, http.StatusServiceUnavailable)
		return
	}
	if st.audio == "" && !s.videoReady(w) {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		http.Error(w, "send the offer as Content-Type: application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "offer too large: at most 64 KiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	hold, err := s.viewers.Hold(sess)
	if errors.Is(err, access.ErrTooManyStreams) {
		http.Error(w, "429 too many requests: "+err.Error(), http.StatusTooManyRequests)
		return
	} else if err != nil {
		s.refuse(w, r, http.StatusServiceUnavailable, pageFull)
		return
	}
	// The session's own lifetime: until the presenter sends the viewer away or the server closes.
	ctx, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(sctx, cancel)
	var once sync.Once
	release := func() {
		once.Do(func() {
			stop()
			cancel()
			hold()
		})
	}
	answer, id, err := st.whep.Offer(ctx, string(body), fanout.SubscriberInfo{ID: sess.ID(), Addr: r.RemoteAddr,
		UserAgent: r.UserAgent()}, release)
	switch {
	case errors.Is(err, ErrBadOffer):
		release()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		release()
		s.log.Warn("WebRTC viewer refused", "addr", r.RemoteAddr, "err", err)
		http.Error(w, "WebRTC: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/whep/"+id)
	w.WriteHeader(http.StatusCreated)
	n, _ := io.WriteString(w, answer)
	s.bytesSent.Add(uint64(n))
}

// handleWHEPDelete ends a session. Its ID, 128 random bits only its viewer
// was told, is the credential: a WHEP player need not send the token again.
func (s *Server) handleWHEPDelete(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	st := s.webrtc.Load()
	id := r.PathValue("id")
	if st == nil || st.whep == nil || !validSessionID(id) {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	if err := st.whep.End(id); err != nil {
		if errors.Is(err, ErrNoSession) {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// validSessionID reports whether id looks like a session ID: hex, at most 64 digits.
func validSessionID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(a[7:]), true
}
