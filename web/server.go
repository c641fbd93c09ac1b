// Package web serves a share over HTTP: the viewer page, its guard, and the MJPEG, WAV, WebSocket and control handlers.
package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// DefaultPort is where Deskcast listens unless told otherwise.
const DefaultPort = 8765

// Config sets up a Server; zero values pick the defaults.
type Config struct {
	Listen       string        // host:port; "" means all interfaces, DefaultPort
	Token        string        // "" means a fresh random token
	KeepAlive    time.Duration // re-send the last frame this often on a still screen (25 s)
	WriteTimeout time.Duration // drop a viewer whose single write takes longer (5 s)
	BodyTimeout  time.Duration // a request body must have arrived within this (10 s)
	Assets       fs.FS         // the viewer page: index.html and static files
	// Video is the screen's fan-out, its frames prepared by MJPEGPrepare; required.
	Video *fanout.Hub[*media.Frame]
	// Audio is the sound's fan-out, its chunks prepared by AudioPrepare; nil for none.
	Audio *fanout.Hub[*media.AudioChunk]
	// Pointer is the presenter's pointer, prepared by PointerPrepare, for
	// /ws/pointer; nil for none (the pointer is then never shown).
	Pointer *fanout.Hub[*media.Pointer]
	// VideoPointer is a second JPEG hub, like Video but with the pointer
	// drawn into the frames, for clients that cannot draw it themselves
	// (players, an <img> without the page's script) and /snapshot.jpg; nil
	// for none (they get Video).
	VideoPointer *fanout.Hub[*media.Frame]
	PointerMode  PointerMode         // how viewers see the pointer; "" means on
	Mode         access.Mode         // what is shared; "" means screen+audio
	Access       access.Access       // PIN, approval and viewer limit
	OnWaiting    func(access.Viewer) // a viewer waits for the presenter's answer; nil for none
	OnChange     func()              // the viewer list changed; must not block; nil for none
	// SourceErr reports why the pictures behind Video cannot be had (the
	// screen grab failing), which Video's own errors do not show; nil for none.
	SourceErr func() error
	Logger    *slog.Logger

	now func() time.Time // the sessions' clock, for tests; nil for time.Now
}

// Meta is what the server says about the share besides its own counters.
type Meta struct {
	Monitor     string `json:"monitor"`
	Encoder     string `json:"encoder"`
	AudioDevice string `json:"-"`            // the device ID; "" for none
	AudioName   string `json:"audio_device"` // as menus show it
	Version     string `json:"-"`            // this build, e.g. "0.4.0 (commit abc1234)"
}

// Server serves the viewer page and the streams of one video hub (and an audio one).
type Server struct {
	cfg     Config
	token   string
	video   *fanout.Hub[*media.Frame]
	ln      net.Listener
	demux   *demux // HTTP and ICE-TCP on ln
	hs      *http.Server
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	closing sync.Once

	viewers     *access.Sessions
	ctl         control
	sockMu      sync.Mutex
	sockShut    bool           // under sockMu: Close has begun, no new WebSocket handler
	sockets     sync.WaitGroup // WebSocket handlers: Shutdown does not track hijacked connections
	wanted      int            // the port asked for, when it was busy and another is used
	meta        atomic.Pointer[Meta]
	mode        atomic.Pointer[access.Mode]
	pointerMode atomic.Pointer[PointerMode]
	bytesSent   atomic.Uint64
	started     time.Time
	webrtc      atomic.Pointer[webrtcState]
	publish     atomic.Pointer[func() PublishStatus] // the publishing status, when publishing
}

// New listens on cfg.Listen (moving up to the next free port when it is busy)
// and serves cfg.Video (and cfg.Audio) until Close.
func New(cfg Config) (*Server, error) {
	if cfg.Video == nil {
		return nil, errors.New("web: no video hub")
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 25 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	token := cfg.Token
	if token == "" {
		token = NewToken()
	} else if err := ValidToken(token); err != nil {
		return nil, err
	}
	if err := cfg.Access.Validate(); err != nil {
		return nil, err
	}
	pm, err := ParsePointerMode(string(cfg.PointerMode))
	if err != nil {
		return nil, err
	}
	ln, wanted, err := listen(cfg.Listen, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, token: token, video: cfg.Video, ln: ln, log: cfg.Logger, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), started: time.Now(), wanted: wanted,
		viewers: access.New(cfg.Access, access.Options{OnWaiting: cfg.OnWaiting, OnChange: cfg.OnChange, Now: cfg.now})}
	s.meta.Store(&Meta{})
	mode := cfg.Mode
	if mode == "" {
		mode = access.ModeScreenAudio
	}
	s.mode.Store(&mode)
	s.SetPointerMode(pm)
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	s.demux = newDemux(smallSendBuffers{ln})
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(s.demux.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return s, nil
}

// sendBuffer caps each connection's kernel send buffer. Left alone, Linux
// grows it to 4 MB, so a viewer that stops reading would take seconds of
// stream (and megabytes of memory) before a write blocked and its deadline
// dropped it; on a still screen, with only keep-alives, many minutes.
// 256 KB (the kernel doubles it) still carries 50 MB/s at a 10 ms round trip.
const sendBuffer = 256 << 10

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBuffer)
	}
	return c, err
}

// listen binds addr, or the next free port above it (up to 20 more) when it
// is taken; then it also returns the port that was asked for, else 0.
func listen(addr string, log *slog.Logger) (_ net.Listener, wanted int, _ error) {
	if addr == "" {
		addr = ":" + strconv.Itoa(DefaultPort)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, 0, fmt.Errorf("listen address %q: bad port", addr)
	}
	tries := 20
	if port == 0 {
		tries = 1
	}
	for i := range tries {
		p := port + i
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			if i > 0 {
				log.Warn("port busy, using the next free one", "wanted", port, "port", p)
				return ln, port, nil
			}
			return ln, 0, nil
		}
		if !isAddrInUse(err) || p == 65535 {
			return nil, 0, fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	return nil, 0, fmt.Errorf("listening on %s: ports %d to %d are all busy", addr, port, port+tries-1)
}

// PortMoved returns the port that was asked for when it was busy and
// Port is the next free one instead; 0 when the server got the port it asked for.
func (s *Server) PortMoved() int { return s.wanted }

// socketStarted counts a WebSocket handler in, unless Close has begun;
// then the caller must answer without upgrading.
func (s *Server) socketStarted() bool {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sockShut {
		return false
	}
	s.sockets.Add(1)
	return true
}

// Token returns the share token.
func (s *Server) Token() string { return s.token }

// Addr returns the address the server listens on.
func (s *Server) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Port returns the port the server listens on.
func (s *Server) Port() int { return s.Addr().Port }

// SetMeta sets what /api/status says about the share.
func (s *Server) SetMeta(m Meta) { s.meta.Store(&m) }

// SetMode changes what is shared; pages follow within a second.
func (s *Server) SetMode(m access.Mode) { s.mode.Store(&m) }

// Mode returns what is shared.
func (s *Server) Mode() access.Mode { return *s.mode.Load() }

// Close ends every stream, stops listening and waits for all handlers to return.
func (s *Server) Close() error {
	var err error
	s.closing.Do(func() {
		s.cancel() // streaming handlers watch this and return
		s.viewers.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err = s.hs.Shutdown(ctx); err != nil {
			err = s.hs.Close()
		}
		<-s.done
		if derr := s.demux.close(); err == nil && derr != nil && !errors.Is(derr, net.ErrClosed) {
			err = derr
		}
		s.sockMu.Lock()
		s.sockShut = true
		s.sockMu.Unlock()
		s.sockets.Wait()
	})
	return err
}

// Viewers returns the viewers the presenter should see (present or waiting,
// oldest first) and a number that changes whenever the list does.
func (s *Server) Viewers() ([]access.Viewer, uint64) { return s.viewers.List() }

// Allow lets a waiting viewer in, or a denied or disconnected one back.
func (s *Server) Allow(id string) error {
	return s.logged("viewer allowed", id, s.viewers.Decide(id, true))
}

// Deny refuses a waiting viewer; it sends away one already watching.
func (s *Server) Deny(id string) error {
	return s.sendAway("viewer denied", id, func(id string) error { return s.viewers.Decide(id, false) })
}

// Disconnect sends a viewer away: its streams end at once and its page says so.
func (s *Server) Disconnect(id string) error {
	return s.sendAway("viewer disconnected", id, s.viewers.Disconnect)
}

// sendAway applies f to the viewer id against the control gate: once it
// returns, no input of that viewer reaches the desktop, and what it held as
// the controller is let go (with --control=all, its socket lets go of its own).
func (s *Server) sendAway(msg, id string, f func(string) error) error {
	s.ctl.gate.Lock()
	defer s.ctl.gate.Unlock()
	had := s.viewers.Controller() == id
	err := f(id)
	if err == nil && had {
		s.ctl.releaseLocked(s.injector())
	}
	return s.logged(msg, id, err)
}

func (s *Server) logged(msg, id string, err error) error {
	if err == nil {
		s.log.Info(msg, "id", id)
	}
	return err
}

// SetAccess changes the PIN, approval and limit for viewers who come next.
func (s *Server) SetAccess(a access.Access) error {
	if err := a.Validate(); err != nil {
		return err
	}
	s.viewers.SetAccess(a)
	return nil
}

// Access returns the rules for new viewers.
func (s *Server) Access() access.Access { return s.viewers.Access() }
