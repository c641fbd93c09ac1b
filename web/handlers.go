package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

const (
	boundary = "deskcastframe"
	// partHead opens a part. Browsers show a part only once the next part's
	// header has arrived, so it is written right after each frame, not before.
	partHead = "--" + boundary + "\r\nContent-Type: image/jpeg\r\n\r\n"
	partTail = "\r\n" + partHead // what follows each frame
)

// MJPEGPrepare is the video hub's Options.Prepare: it publishes a numbered
// copy of f whose Wire is the JPEG followed by the next part's header, so
// each viewer's send is a single write of shared bytes. Data is sliced from
// Wire: one copy of the bytes in memory, not two. f itself is left as it was,
// since the source may emit the same frame again.
func MJPEGPrepare(f *media.Frame, seq uint64) *media.Frame {
	nf := *f
	nf.Seq = seq
	nf.Wire = append(append(make([]byte, 0, len(f.Data)+len(partTail)), f.Data...), partTail...)
	nf.Data = nf.Wire[:len(f.Data):len(f.Data)]
	return &nf
}

// Handler returns the server's routes. Everything but /static/ needs the token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.Assets != nil {
		if static, err := fs.Sub(s.cfg.Assets, "static"); err == nil {
			fileServer := http.StripPrefix("/static/", noListing(http.FileServerFS(static)))
			mux.Handle("GET /static/", withHeaders(fileServer, "public, max-age=3600"))
			mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=3600")
				http.ServeFileFS(w, r, static, "icon.png")
			})
		}
	}
	mux.HandleFunc("GET /{$}", s.guard(s.handlePage, false))
	mux.HandleFunc("POST /pin", s.handlePIN)
	mux.HandleFunc("GET /stream.mjpg", s.guard(s.handleMJPEG, true))
	mux.HandleFunc("GET /snapshot.jpg", s.guard(s.handleSnapshot, false))
	mux.HandleFunc("GET /api/status", s.statusRoute(s.guard(s.handleStatus, false)))
	mux.HandleFunc("GET /audio.wav", s.guard(s.handleWAV, true))
	mux.HandleFunc("GET /ws/audio", s.guard(s.handleWSAudio, true))
	mux.HandleFunc("GET /ws/control", s.guard(s.handleControl, true))
	mux.HandleFunc("GET /ws/pointer", s.guard(s.handleWSPointer, true))
	mux.HandleFunc("POST /whep", s.handleWHEP)
	mux.HandleFunc("DELETE /whep/{id}", s.handleWHEPDelete)
	mux.HandleFunc("GET /api/viewers", s.presenter(s.handleViewers))
	mux.HandleFunc("GET /metrics", s.presenter(s.handleMetrics))
	mux.HandleFunc("POST /api/viewers/{id}/{action}", s.presenter(s.handleViewerAction))
	return securityHeaders(bodyDeadline(mux, s.cfg.BodyTimeout))
}

// bodyDeadline bounds the time a request body may take to arrive. The server
// has no ReadTimeout, which would cut long streams; without this, a client
// that announces a body and never sends it would hold its connection for
// ever, since net/http reads what a handler left unread with no deadline.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}

// noListing answers 404 for folders instead of listing them.
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Referrer-Policy", "no-referrer") // the token travels in the URL
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func withHeaders(h http.Handler, cache string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", cache)
		h.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

// notYet is how guard answers a viewer who may not watch (yet).
var notYet = map[access.ViewerState]struct {
	code int
	page page
}{
	access.ViewerNeedsPIN:     {http.StatusUnauthorized, pagePIN},
	access.ViewerWaiting:      {http.StatusForbidden, pageWaiting},
	access.ViewerDenied:       {http.StatusForbidden, pageDenied},
	access.ViewerDisconnected: {http.StatusForbidden, pageDisconnected},
}

// guard serves h only to a viewer who may watch: it answers 401, 403 or 503,
// with not one byte of media, to anyone else. A media stream (media true)
// counts toward the viewer's presence and ends when the presenter sends the
// viewer away.
func (s *Server) guard(h http.HandlerFunc, media bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		sess := s.session(w, r)
		if sess == nil {
			return
		}
		state, sctx, err := s.viewers.Enter(sess, r.URL.Path == "/")
		if err != nil {
			s.refuse(w, r, http.StatusServiceUnavailable, pageFull)
			return
		}
		if no, ok := notYet[state]; ok {
			s.refuse(w, r, no.code, no.page)
			return
		}
		if media {
			release, err := s.viewers.Hold(sess)
			if errors.Is(err, access.ErrTooManyStreams) {
				http.Error(w, "429 too many requests: "+err.Error(), http.StatusTooManyRequests)
				return
			} else if err != nil {
				s.refuse(w, r, http.StatusServiceUnavailable, pageFull)
				return
			}
			defer release()
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(sctx, cancel)()
		h(w, r.WithContext(context.WithValue(ctx, ctxKey{}, sess)))
	}
}

// handlePIN checks the PIN form of a viewer who has the link.
func (s *Server) handlePIN(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c, err := s.credentials(r)
	sess := s.viewers.Lookup(c.secret)
	if err != nil || sess == nil || c.hasToken && !s.tokenOK(c.token) {
		s.refuse(w, r, http.StatusUnauthorized, pageInvalid)
		return
	}
	pin, err := readPINForm(http.MaxBytesReader(w, r.Body, 1<<10), r.Header.Get("Content-Type"))
	switch {
	case err == nil:
		err = s.viewers.CheckPIN(sess, r.RemoteAddr, pin)
	case errors.Is(err, access.ErrWrongPIN):
		// Not even digits: still a guess, and it counts toward the lockout.
		if lerr := s.viewers.CheckPIN(sess, r.RemoteAddr, ""); errors.Is(lerr, access.ErrLocked) {
			err = lerr
		}
	}
	switch {
	case errors.Is(err, access.ErrLocked):
		s.log.Warn("PIN lockout", "addr", r.RemoteAddr)
		pageLocked.render(w, http.StatusTooManyRequests, "")
	case err != nil:
		s.log.Info("wrong PIN", "addr", r.RemoteAddr)
		pagePIN.render(w, http.StatusUnauthorized, err.Error())
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// readPINForm reads the pin field of a urlencoded form body.
func readPINForm(body io.Reader, contentType string) (string, error) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return "", errors.New("send the PIN from the form")
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return "", errors.New("form too large")
	}
	q, err := url.ParseQuery(string(raw))
	if err != nil || len(q["pin"]) != 1 {
		return "", errors.New("send the PIN from the form")
	}
	pin := strings.TrimSpace(q.Get("pin"))
	if access.ValidPIN(pin) != nil {
		return "", access.ErrWrongPIN
	}
	return pin, nil
}

// presenter serves h only to the presenter: a request from this computer
// (loopback) with the token, or with the cookie of a viewer who may watch.
func (s *Server) presenter(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		c, err := s.credentials(r)
		ok := err == nil && isLoopback(r.RemoteAddr)
		if ok && c.hasToken {
			ok = s.tokenOK(c.token)
		} else if ok && r.Method != http.MethodGet {
			// Actions need the token itself: a page served from another port of
			// this computer is the same site, so the cookie would come along.
			ok = false
		} else if ok {
			sess := s.viewers.Lookup(c.secret)
			ok = sess != nil && sess.Is(access.ViewerAllowed)
		}
		if !ok {
			http.Error(w, "403 forbidden: for the presenter, from this computer", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// statusRoute answers the presenter (this computer, with the token) without
// making it a viewer when a PIN or approval is on, so neither stands in its
// way nor asks the presenter about its own script; everyone else goes
// through viewer.
func (s *Server) statusRoute(viewer http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if acc := s.Access(); acc.PIN == "" && acc.Approve == access.ApproveOff {
			viewer(w, r) // nothing stands in the way: a viewer like any other
			return
		}
		c, err := s.credentials(r)
		if err != nil || !c.hasToken || c.secret != "" || !isLoopback(r.RemoteAddr) || !s.tokenOK(c.token) {
			viewer(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		s.handleStatus(w, r)
	}
}

func (s *Server) handleViewers(w http.ResponseWriter, r *http.Request) {
	vs, _ := s.Viewers()
	if vs == nil {
		vs = []access.Viewer{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(vs)
}

func (s *Server) handleViewerAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "allow":
		err = s.Allow(id)
	case "deny":
		err = s.Deny(id)
	case "disconnect":
		err = s.Disconnect(id)
	case "control":
		err = s.Grant(id)
	case "revoke":
		err = s.Revoke(id)
	default:
		http.Error(w, "unknown action: want allow, deny, disconnect, control or revoke", http.StatusNotFound)
		return
	}
	switch {
	case errors.Is(err, access.ErrNoViewer):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Assets == nil {
		http.Error(w, "no viewer page in this build", http.StatusNotFound)
		return
	}
	page, err := fs.ReadFile(s.cfg.Assets, "index.html")
	if err != nil {
		http.Error(w, "viewer page missing", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// 'self' covers ws:// only in newer browsers; older WebKit needs it named.
	connect := "'self'"
	if validHost(r.Host) {
		connect += " ws://" + r.Host
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "+
		"connect-src "+connect+"; media-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	_, _ = w.Write(page)
}

// validHost reports whether h is a plain host[:port] that is safe to echo into a header.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// viewerID is the page's own random id for a stream, so it can ask for its own stats.
func viewerID(r *http.Request) string {
	v := r.URL.Query().Get("v")
	if len(v) > 32 {
		return ""
	}
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return v
}

// streamWriter returns a function that writes parts of a long response and
// flushes them, each call under a write deadline, so a peer that stops
// reading is dropped within WriteTimeout; it reports whether all went out.
func (s *Server) streamWriter(w http.ResponseWriter) func(parts ...[]byte) bool {
	rc := http.NewResponseController(w)
	return func(parts ...[]byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		for _, p := range parts {
			m, err := w.Write(p)
			s.bytesSent.Add(uint64(m))
			if err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
}

// videoReady answers 503 when the screen is not shared (audio-only mode).
func (s *Server) videoReady(w http.ResponseWriter) bool {
	if !s.Mode().Video() {
		http.Error(w, "the screen is not shared (audio only)", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func (s *Server) handleMJPEG(w http.ResponseWriter, r *http.Request) {
	if !s.videoReady(w) {
		return
	}
	if r.Method == http.MethodHead {
		// net/http discards a HEAD body, so a stream would never see a failed
		// write and would hold a viewer slot (and the capture) forever.
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
		return
	}
	hub := s.mjpegHub(r)
	sub, err := hub.Subscribe(fanout.SubscriberInfo{ID: viewerID(r), Addr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		http.Error(w, "sharing has stopped", http.StatusServiceUnavailable)
		return
	}
	defer sub.Close()
	n := hub.Stats().Subscribers
	s.log.Info("viewer joined", "addr", r.RemoteAddr, "viewers", n)
	defer func() {
		st := sub.Stats()
		s.log.Info("viewer left", "addr", r.RemoteAddr, "watched", time.Since(st.Since).Round(time.Second),
			"frames", st.Frames, "dropped", st.Dropped)
	}()

	// ?cl=1: the classic layout, a Content-Length in each part's header. Players
	// such as VLC and ffplay read either; browsers then show each frame one late.
	withLength := r.URL.Query().Get("cl") == "1"
	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	h.Set("X-Accel-Buffering", "no")
	// The stream never ends on its own, so chunked framing buys nothing and
	// costs syscalls per frame; "identity" makes net/http send the body as is
	// and close the connection after it, as classic MJPEG servers do.
	h.Set("Transfer-Encoding", "identity")
	w.WriteHeader(http.StatusOK)

	write := s.streamWriter(w)
	if !withLength && !write([]byte(partHead)) {
		return
	}
	send := func(f *media.Frame) bool {
		var ok bool
		if withLength {
			head := "--" + boundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " + strconv.Itoa(len(f.Data)) + "\r\n\r\n"
			ok = write([]byte(head), f.Data, []byte("\r\n"))
		} else {
			ok = write(f.Wire)
		}
		if ok {
			sub.Sent(len(f.Data))
		}
		return ok
	}

	keepAlive := time.NewTimer(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	var last *media.Frame
	for {
		select {
		case f := <-sub.Frames():
			if !send(f) {
				return
			}
			last = f
			keepAlive.Reset(s.cfg.KeepAlive)
		case <-keepAlive.C:
			// Nothing changed on screen: re-send so a dead peer shows up as a write error.
			if last != nil && !send(last) {
				return
			}
			keepAlive.Reset(s.cfg.KeepAlive)
		case <-sub.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	if !s.videoReady(w) {
		return
	}
	if r.Method == http.MethodHead { // answer without starting a capture
		w.Header().Set("Content-Type", "image/jpeg")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	f, err := s.mjpegHub(r).Snapshot(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = cmp.Or(s.videoErr(nil), err) // say why no picture came, when the source knows
	}
	if err != nil {
		http.Error(w, "no frame: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	n, _ := w.Write(f.Data)
	s.bytesSent.Add(uint64(n))
}

// Status is what /api/status answers.
type Status struct {
	Version       string                  `json:"version"` // this build: release and commit
	State         string                  `json:"state"`   // sharing, paused or error
	Error         string                  `json:"error,omitempty"`
	Mode          access.Mode             `json:"mode"`
	Audio         AudioStatus             `json:"audio"`
	Monitor       string                  `json:"monitor"`
	Encoder       string                  `json:"encoder"`
	Capturing     bool                    `json:"capturing"`
	Width         int                     `json:"width"`
	Height        int                     `json:"height"`
	FPS           uint64                  `json:"fps"`
	Viewers       int                     `json:"viewers"`
	Frames        uint64                  `json:"frames"`
	FramesDropped uint64                  `json:"frames_dropped"`
	BytesSent     uint64                  `json:"bytes_sent"`
	GrabMS        float64                 `json:"grab_ms"`
	EncodeMS      float64                 `json:"encode_ms"`
	FrameAgeMS    float64                 `json:"frame_age_ms"` // since the newest frame was captured
	UptimeS       int64                   `json:"uptime_s"`
	You           *fanout.SubscriberStats `json:"you,omitempty"`         // the stream whose ?v= the request names
	ViewerList    []access.Viewer         `json:"viewer_list,omitempty"` // for the presenter only (loopback)
	Control       ControlStatus           `json:"control"`
	Pointer       PointerMode             `json:"pointer"` // on, off or highlight
	WebRTC        WebRTCStatus            `json:"webrtc"`
	Publish       *PublishStatus          `json:"publish,omitempty"` // for the presenter only (loopback), when publishing
}

// videoErr is the video's error: the hub's own, else its source's.
func (s *Server) videoErr(hubErr error) error {
	if hubErr == nil && s.cfg.SourceErr != nil {
		return s.cfg.SourceErr()
	}
	return hubErr
}

// Status returns the share's state and counters.
func (s *Server) Status() Status {
	bs := s.video.Stats()
	m := s.meta.Load()
	st := Status{Version: m.Version, State: "sharing", Mode: s.Mode(), Audio: s.audioStatus(), Monitor: m.Monitor, Encoder: m.Encoder, Capturing: bs.Running, FPS: bs.FPS,
		Viewers: bs.Subscribers, Frames: bs.Frames, FramesDropped: bs.Dropped, BytesSent: s.bytesSent.Load(),
		UptimeS: int64(time.Since(s.started).Seconds()), Pointer: s.PointerMode(), Control: s.controlStatus(nil, true), WebRTC: s.webRTCStatus()}
	paused := bs.Paused
	if !st.Mode.Video() && s.cfg.Audio != nil {
		paused = s.cfg.Audio.Stats().Paused
	}
	switch err := s.videoErr(bs.Err); {
	case paused:
		st.State = "paused"
	case err != nil:
		st.State, st.Error = "error", err.Error()
	}
	// Players with the pointer drawn in watch a JPEG track of their own.
	if h := s.cfg.VideoPointer; h != nil {
		vs := h.Stats()
		st.Viewers += vs.Subscribers
		st.Capturing = st.Capturing || vs.Running
		st.FPS = max(st.FPS, vs.FPS)
		st.FramesDropped += vs.Dropped
		if bs.Last == nil && vs.Last != nil {
			bs.Last = vs.Last
		}
	}
	// WebRTC viewers watch other tracks of the same pictures: count them too,
	// and take the picture's figures from theirs when no MJPEG viewer watches.
	if w := s.webrtc.Load(); w != nil && w.whep != nil {
		st.Viewers += w.whep.Sessions()
		for _, h := range w.video {
			vs := h.Stats()
			st.Capturing = st.Capturing || vs.Running
			st.FPS = max(st.FPS, vs.FPS)
			if bs.Last == nil && vs.Last != nil {
				bs.Last = vs.Last
			}
		}
	}
	if f := bs.Last; f != nil {
		st.Width, st.Height = f.Width, f.Height
		st.GrabMS = float64(f.Grab.Microseconds()) / 1000
		st.EncodeMS = float64(f.Encode.Microseconds()) / 1000
		st.FrameAgeMS = float64(time.Since(f.Captured).Milliseconds())
	}
	return st
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	if id := viewerID(r); id != "" {
		subs := s.video.Subscribers()
		if s.cfg.VideoPointer != nil {
			subs = append(subs, s.cfg.VideoPointer.Subscribers()...)
		}
		for _, v := range subs {
			if v.ID == id {
				st.You = &v
				break
			}
		}
	}
	sess, _ := r.Context().Value(ctxKey{}).(*access.Session)
	st.Control = s.controlStatus(sess, isLoopback(r.RemoteAddr))
	if isLoopback(r.RemoteAddr) {
		st.ViewerList, _ = s.Viewers()
		st.Publish = s.Publishing()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}
