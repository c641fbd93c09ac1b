// Package engine wires a share together: the screen's grab loop and its
// encoded tracks, the sound, remote control and the web server. The desktop
// app and headless mode both drive it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net/url"
	"sync"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/assets"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/capture/audio"
	"github.com/deskcast/deskcast/codec/jpeg"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/input"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
	"github.com/deskcast/deskcast/rtc"
	"github.com/deskcast/deskcast/version"
	"github.com/deskcast/deskcast/web"
)

// Settings are what the user chooses; the flags and the GUI set the same ones.
type Settings struct {
	Listen   string
	Token    string // "" for a fresh random token at every Start
	Monitor  int    // 0-based
	Region   image.Rectangle
	FPS      int
	Quality  int // JPEG quality
	MaxWidth int
	Audio    string      // audio device ID (see audio.Devices); "" for none
	Mode     access.Mode // what is shared; "" means screen+audio
	Access   access.Access
	Control  access.ControlMode // remote control from viewers; off by default
	Pointer  web.PointerMode    // how viewers see the presenter's pointer; "" means on
	Publish  Publish            // a media server to publish to as well; none when its URL is ""
	// PortalToken is the desktop's permission to share the screen again
	// without its dialog, on a Wayland session (the ScreenCast portal's
	// restore token); "" to ask. The engine updates it as the portal
	// hands out new ones.
	PortalToken string
}

// Publish is where the share is published as well as served: a media
// server's WHIP endpoint, with its token, and the address its viewers
// watch at (shown to the presenter, if given).
type Publish struct {
	URL   string
	Token string // sent as "Authorization: Bearer"; never logged nor shown
	View  string
}

// Defaults returns the settings Deskcast starts with.
func Defaults() Settings {
	return Settings{FPS: 30, Quality: 70, Mode: access.ModeScreenAudio, Pointer: web.PointerOn}
}

func (s Settings) screen() capture.ScreenConfig {
	return capture.ScreenConfig{Monitor: s.Monitor, Region: s.Region, FPS: s.FPS, MaxWidth: s.MaxWidth}
}

// check reports the first setting that is out of range.
func (s Settings) check() error {
	if err := s.screen().Validate(); err != nil {
		return err
	}
	if err := jpeg.ValidateQuality(s.Quality); err != nil {
		return err
	}
	if _, err := web.ParsePointerMode(string(s.Pointer)); err != nil {
		return err
	}
	if s.Publish.URL != "" {
		if u, err := url.Parse(s.Publish.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("publish URL %q: want the media server's WHIP endpoint, http:// or https://", s.Publish.URL)
		}
	}
	return s.Access.Validate()
}

// ErrNotSharing is returned by calls that need a running share.
var ErrNotSharing = errors.New("not sharing")

// Engine starts and stops a share. It is safe for concurrent use.
//
// While a share runs, its server is the one place that holds what is shared
// (Mode), who may watch (Access) and who may control (Control): Settings
// reads them from there, and Stop keeps them for the next share.
type Engine struct {
	log     *slog.Logger
	changes chan struct{} // capacity one: a pending change notice

	mu       sync.Mutex
	settings Settings
	paused   bool
	share    *share // nil when not sharing
	inj      *injector
	// portal keeps the screen-cast permission on Wayland; its token is
	// copied into settings.PortalToken as it changes.
	portal *capture.Portal
}

// share is what one Start builds and Stop takes down.
type share struct {
	srv   *web.Server
	pipe  *pipeline.Pipeline
	jpeg  *pipeline.Track
	audio *fanout.Hub[*media.AudioChunk]
	// pointer is the presenter's pointer for the page; jpegPointer the JPEG
	// track with the pointer drawn in, for players and snapshots.
	pointer     *fanout.Hub[*media.Pointer]
	jpegPointer *pipeline.Track
	h264        *pipeline.Track      // nil when WebRTC is off
	vp8         *pipeline.Track      // nil when WebRTC or libvpx is off
	rtc         *rtc.Server          // nil when WebRTC is off
	opus        *pipeline.AudioTrack // the WebRTC listeners' sound; nil when WebRTC or libopus is off
	pub         *rtc.Publisher       // nil when not publishing
	// stopAsk ends the portal's dialog, if Start asked and it is still up,
	// and waits for it.
	stopAsk func()
}

// New returns a stopped engine with the given settings.
func New(s Settings, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	e := &Engine{settings: s, log: log, changes: make(chan struct{}, 1)}
	e.portal = capture.NewPortal(s.PortalToken, e.savePortalToken, e.changed)
	return e, nil
}

// savePortalToken says a new token was handed out: Settings reads it from
// the Portal, and the app stores it. It takes no lock of the engine's: the
// portal is opened by the grab loop, which the engine waits for under e.mu
// when it swaps the source or pauses.
func (e *Engine) savePortalToken(string) { e.changed() }

// Changes returns a channel that receives a value soon after the share
// changes: started, stopped, paused, a setting, a viewer arriving, waiting,
// let in or leaving, capture starting, stopping or failing. Notices that
// come while one is pending count as one; counters (fps, bytes) change
// without notice.
func (e *Engine) Changes() <-chan struct{} { return e.changes }

// changed posts a change notice; it never blocks.
func (e *Engine) changed() {
	select {
	case e.changes <- struct{}{}:
	default:
	}
}

// screenSource checks s's screen settings and returns its grab loop's source.
func (e *Engine) screenSource(s Settings) (pipeline.Source, error) {
	cfg := s.screen()
	cfg.Portal = e.portal
	scr, err := capture.NewScreen(cfg)
	if err != nil {
		return nil, err
	}
	return scr, nil
}

// jpegTrack is the MJPEG viewers' encoding: every frame a JPEG at s.Quality.
func jpegTrack(quality int) pipeline.TrackOptions {
	return pipeline.TrackOptions{
		Name:     "jpeg",
		Encoder:  func() (media.Encoder, error) { return jpeg.New(quality) },
		Delivery: pipeline.NewestWins,
		Prepare:  web.MJPEGPrepare,
	}
}

// audioSource returns the device's capture; nil for no device.
func audioSource(device string) fanout.Source[*media.AudioChunk] {
	if device == "" {
		return nil
	}
	return audio.New(device)
}

// audioName is how menus and the status name a device ID.
func audioName(id string) string {
	if id == "" {
		return ""
	}
	if ds, err := audio.Devices(); err == nil {
		for _, d := range ds {
			if d.ID == id {
				return d.Name
			}
		}
	}
	return id
}

func (e *Engine) meta() web.Meta {
	m := fmt.Sprintf("%d", e.settings.Monitor+1)
	if ms, err := capture.Monitors(); err == nil && e.settings.Monitor < len(ms) {
		m = ms[e.settings.Monitor].String()
	}
	if !e.settings.Region.Empty() {
		r := e.settings.Region
		m += fmt.Sprintf(", region %d,%d %d×%d", r.Min.X, r.Min.Y, r.Dx(), r.Dy())
	}
	return web.Meta{Monitor: m, Encoder: jpeg.EncoderName, AudioDevice: e.settings.Audio, AudioName: audioName(e.settings.Audio),
		Version: version.String()}
}

// Start starts serving. Capture itself starts with the first viewer.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.share != nil {
		return nil
	}
	src, err := e.screenSource(e.settings)
	if err != nil {
		return err
	}
	pipe := pipeline.New(src, pipeline.Options{Logger: e.log, OnChange: e.changed})
	sh := &share{
		pipe: pipe,
		jpeg: pipe.Track(jpegTrack(e.settings.Quality)),
		audio: fanout.New(audioSource(e.settings.Audio), fanout.Options[*media.AudioChunk]{Logger: e.log,
			Queue: web.AudioQueue, Prepare: web.AudioPrepare, OnChange: e.changed}),
		pointer: e.newPointerHub(e.settings),
	}
	sh.jpegPointer = pipe.Track(pointerJPEGTrack(e.settings.Quality, e.settings.FPS, sh.pointer, &sh.jpegPointer))
	sh.srv, err = web.New(web.Config{Listen: e.settings.Listen, Token: e.settings.Token, Assets: assets.Viewer,
		Video: sh.jpeg.Hub, Audio: sh.audio, SourceErr: pipe.Err, Mode: e.settings.Mode, Access: e.settings.Access,
		Pointer: sh.pointer, VideoPointer: sh.jpegPointer.Hub, PointerMode: e.settings.Pointer,
		OnChange: e.changed, OnWaiting: func(access.Viewer) { e.changed() }, Logger: e.log})
	if err != nil {
		pipe.Close()
		sh.audio.Close()
		sh.pointer.Close()
		return fmt.Errorf("starting the server: %w", err)
	}
	sh.srv.SetMeta(e.meta())
	e.portal.Rearm() // a new share may ask again, after a refusal or an end
	sh.stopAsk = e.askPortal()
	e.startWebRTC(sh)
	e.startPublish(sh)
	if why := input.Available(); why != nil {
		sh.srv.SetControlUnavailable(why.Error())
	}
	e.share = sh
	e.applyPauseLocked()
	if err := e.applyControlLocked(); err != nil {
		e.log.Warn("remote control stays off", "err", err)
	}
	e.changed()
	return nil
}

// askPortal asks the desktop for the screen now on a Wayland session with
// no permission stored, so that its dialog comes with Start sharing rather
// than with the first viewer. The returned func cancels and waits.
func (e *Engine) askPortal() func() {
	if !capture.UsesPortal() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.portal.Ask(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("the desktop did not give the screen", "err", err)
		}
		e.changed()
	}()
	return func() { cancel(); <-done }
}

// SetPortalToken sets the remembered permission to share the screen on
// Wayland (the portal's restore token), "" to ask again.
func (e *Engine) SetPortalToken(tok string) { e.portal.Reset(tok) }

// applyPauseLocked stops whatever is not shared: both while paused, the
// screen in audio-only mode and the sound in screen-only mode.
func (e *Engine) applyPauseLocked() {
	if e.share == nil {
		return
	}
	m := e.share.srv.Mode()
	e.share.pipe.SetPaused(e.paused || m == access.ModeAudio)
	e.share.audio.SetPaused(e.paused || m == access.ModeScreen)
	e.share.pointer.SetPaused(e.paused || m == access.ModeAudio || !e.share.srv.PointerMode().Shown())
}

// Stop ends every stream and stops serving; it waits until all is closed.
func (e *Engine) Stop() {
	e.mu.Lock()
	sh, inj := e.share, e.inj
	if sh != nil {
		e.settings = e.liveLocked()
	}
	e.share, e.inj = nil, nil
	e.paused = false
	e.mu.Unlock()
	if inj != nil {
		inj.stop() // a control handler waiting for the desktop's dialog gives up, so the server can close
	}
	if sh != nil {
		sh.stopAsk()
		if sh.pub != nil {
			sh.pub.Close() // first: its session ends with a DELETE, not as the server goes
		}
		_ = sh.srv.Close()
		if sh.rtc != nil {
			_ = sh.rtc.Close()
		}
		if sh.opus != nil {
			sh.opus.Close()
		}
		sh.pipe.Close() // before the pointer hub: its pointer track follows the hub
		sh.audio.Close()
		sh.pointer.Close()
		e.changed()
	}
	// After the server: no control handler can reopen the input now.
	if inj != nil {
		_ = inj.close()
	}
}

// SetPaused pauses or resumes capture of screen and sound; viewers stay connected.
func (e *Engine) SetPaused(p bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.share == nil {
		return ErrNotSharing
	}
	e.paused = p
	e.applyPauseLocked()
	e.changed()
	return nil
}

// SetMode switches between screen+audio, screen only and audio only, live.
func (e *Engine) SetMode(m access.Mode) error {
	if _, err := access.ParseMode(string(m)); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.share != nil {
		e.share.srv.SetMode(m)
		e.applyPauseLocked()
	} else {
		e.settings.Mode = m
	}
	e.changed()
	return nil
}

// SetPointer changes how viewers see the presenter's pointer (on, off or
// highlight), live: pages follow within a second, and players get frames
// with or without it from their next connection.
func (e *Engine) SetPointer(m web.PointerMode) error {
	m, err := web.ParsePointerMode(string(m))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.share != nil {
		e.share.srv.SetPointerMode(m)
		e.applyPauseLocked()
	} else {
		e.settings.Pointer = m
	}
	e.changed()
	return nil
}

// SetPublish sets the media server the share is published to as well (a
// URL of "" for none); while sharing, publishing restarts with it.
func (e *Engine) SetPublish(p Publish) error {
	check := e.Settings()
	check.Publish = p
	if err := check.check(); err != nil {
		return err
	}
	e.mu.Lock()
	e.settings.Publish = p
	var old *rtc.Publisher
	if sh := e.share; sh != nil {
		old, sh.pub = sh.pub, nil
		sh.srv.SetPublish(nil)
		e.startPublish(sh)
	}
	e.mu.Unlock()
	if old != nil {
		old.Close() // outside the lock: its DELETE may take a moment
	}
	e.changed()
	return nil
}

// SetAudio switches the audio device (an ID from audio.Devices, "" for
// none), live: listeners stay connected and hear the new device.
func (e *Engine) SetAudio(device string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings.Audio = device
	if e.share != nil {
		e.share.audio.SetSource(audioSource(device))
		e.share.srv.SetMeta(e.meta())
	}
	e.changed()
	return nil
}

// SetMonitor switches to another monitor; viewers stay connected.
func (e *Engine) SetMonitor(i int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.settings
	s.Monitor, s.Region = i, image.Rectangle{}
	return e.applyLocked(s)
}

// SetQuality changes frame rate, JPEG quality and maximum width live.
func (e *Engine) SetQuality(fps, quality, maxWidth int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.settings
	s.FPS, s.Quality, s.MaxWidth = fps, quality, maxWidth
	return e.applyLocked(s)
}

// applyLocked makes s the settings, live: a new screen source for the grab
// loop and, for another quality, a new JPEG encoder.
func (e *Engine) applyLocked(s Settings) error {
	src, err := e.screenSource(s)
	if err != nil {
		return err
	}
	if err := jpeg.ValidateQuality(s.Quality); err != nil {
		return err
	}
	old := e.settings
	e.settings = s
	if sh := e.share; sh != nil {
		if s.Quality != old.Quality {
			sh.jpeg.SetEncoder(jpegTrack(s.Quality).Encoder)
			sh.jpegPointer.SetEncoder(pointerJPEGTrack(s.Quality, s.FPS, sh.pointer, &sh.jpegPointer).Encoder)
		}
		if s.FPS != old.FPS && sh.h264 != nil { // its rate control budgets each frame from the rate
			sh.h264.SetEncoder(h264Track(s.FPS).Encoder)
			if sh.vp8 != nil {
				sh.vp8.SetEncoder(vp8Track(s.FPS).Encoder)
			}
		}
		sh.pipe.SetSource(src)
		sh.pointer.SetSource(pointerSource(s, e.portal))
		sh.srv.SetMeta(e.meta())
		if e.inj != nil {
			if r, err := sharedRect(s); err == nil {
				e.inj.setRect(r, s.Region)
			}
		}
	}
	e.changed()
	return nil
}

// Settings returns the current settings.
func (e *Engine) Settings() Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.liveLocked()
}

// liveLocked is the settings with, while sharing, the server's Mode,
// Access and Control.
func (e *Engine) liveLocked() Settings {
	s := e.settings
	s.PortalToken = e.portal.Token()
	if sh := e.share; sh != nil {
		s.Mode, s.Access, s.Control, s.Pointer = sh.srv.Mode(), sh.srv.Access(), sh.srv.ControlMode(), sh.srv.PointerMode()
	}
	return s
}

// Server returns the running server, or nil when not sharing.
func (e *Engine) Server() *web.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.share == nil {
		return nil
	}
	return e.share.srv
}

// State is everything a UI shows about the share, in one call.
type State struct {
	Sharing bool
	Paused  bool
	Port    int
	Wanted  int // the port asked for, when it was busy and Port is the next free one; else 0
	URLs    []web.ViewerURL
	Exposed []string // every address others reach the share on, "interface address"
	Status  web.Status
	Viewers []access.Viewer    // present or waiting, oldest first
	Publish *web.PublishStatus // nil when not publishing
	// Portal is what the desktop's screen-sharing portal is doing or why it
	// failed (Wayland): waiting for the presenter in its dialog, permission
	// denied, the session ended; "" when all is well or on X11.
	Portal string
}

// State returns the share's state and counters.
func (e *Engine) State() State {
	srv := e.Server()
	if srv == nil {
		return State{}
	}
	e.mu.Lock()
	paused := e.paused
	e.mu.Unlock()
	vs, _ := srv.Viewers()
	return State{Sharing: true, Paused: paused, Port: srv.Port(), Wanted: srv.PortMoved(), URLs: srv.ViewerURLs(), Exposed: srv.Exposed(),
		Status: srv.Status(), Viewers: vs, Publish: srv.Publishing(), Portal: e.portal.Status()}
}

// SetAccess changes the PIN, approval and viewer limit; live for viewers
// who come next.
func (e *Engine) SetAccess(a access.Access) error {
	if err := a.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.changed()
	if e.share != nil {
		return e.share.srv.SetAccess(a)
	}
	e.settings.Access = a
	return nil
}

// Allow lets a waiting viewer in.
func (e *Engine) Allow(id string) error { return e.onViewer(id, (*web.Server).Allow) }

// Deny refuses a waiting viewer.
func (e *Engine) Deny(id string) error { return e.onViewer(id, (*web.Server).Deny) }

// Disconnect sends a viewer away.
func (e *Engine) Disconnect(id string) error { return e.onViewer(id, (*web.Server).Disconnect) }

func (e *Engine) onViewer(id string, f func(*web.Server, string) error) error {
	srv := e.Server()
	if srv == nil {
		return ErrNotSharing
	}
	return f(srv, id)
}

// SetListen changes the listen address used by the next Start.
func (e *Engine) SetListen(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings.Listen = addr
}
