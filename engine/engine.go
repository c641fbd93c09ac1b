// Package engine wires the screen capture into the streaming server: it is
// the part of Deskcast that both the desktop app and headless mode drive.
package engine

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/assets"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

// Settings are what the user chooses; the flags and the GUI set the same ones.
type Settings struct {
	Listen   string
	Token    string // "" for a fresh random token at every Start
	Monitor  int    // 0-based
	Region   image.Rectangle
	FPS      int
	Quality  int
	MaxWidth int
	Audio    string      // audio device ID (see capture.AudioDevices); "" for none
	Mode     access.Mode // what is shared; "" means screen+audio
	Access   access.Access
	Control  access.ControlMode // remote control from viewers; off by default
}

// Defaults returns the settings Deskcast starts with.
func Defaults() Settings {
	return Settings{FPS: 30, Quality: 70, Mode: access.ModeScreenAudio}
}

func (s Settings) screen() capture.ScreenConfig {
	return capture.ScreenConfig{Monitor: s.Monitor, Region: s.Region, FPS: s.FPS, Quality: s.Quality, MaxWidth: s.MaxWidth}
}

// ErrNotSharing is returned by calls that need a running share.
var ErrNotSharing = errors.New("not sharing")

// Engine starts and stops a share. It is safe for concurrent use.
type Engine struct {
	log *slog.Logger

	mu       sync.Mutex
	settings Settings
	paused   bool
	srv      *web.Server
	b        *fanout.Hub[*media.Frame]
	audio    *fanout.Hub[*media.AudioChunk]
	inj      *injector // remote control, once turned on
}

// New returns a stopped engine with the given settings.
func New(s Settings, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := s.screen().Validate(); err != nil {
		return nil, err
	}
	if err := s.Access.Validate(); err != nil {
		return nil, err
	}
	return &Engine{settings: s, log: log}, nil
}

// source adapts a capture.Screen to the video hub's Source.
func source(scr *capture.Screen) fanout.Source[*media.Frame] {
	return fanout.SourceFunc[*media.Frame](func(ctx context.Context, emit func(*media.Frame)) error {
		return scr.Run(ctx, func(f capture.Frame) {
			emit(&media.Frame{Codec: media.JPEG, Data: f.JPEG, Keyframe: true, Width: f.Width, Height: f.Height,
				Captured: f.Captured, Grab: f.Grab, Encode: f.Encode})
		})
	})
}

// audioSource adapts a capture.Audio to the audio hub's Source; nil for no device.
func audioSource(device string) fanout.Source[*media.AudioChunk] {
	if device == "" {
		return nil
	}
	a := capture.NewAudio(device)
	return fanout.SourceFunc[*media.AudioChunk](func(ctx context.Context, emit func(*media.AudioChunk)) error {
		return a.Run(ctx, func(c capture.AudioChunk) {
			emit(&media.AudioChunk{PCM: c.PCM, Rate: c.Rate, Channels: c.Channels, Captured: c.Captured})
		})
	})
}

// audioName is how menus and the status name a device ID.
func audioName(id string) string {
	if id == "" {
		return ""
	}
	if ds, err := capture.AudioDevices(); err == nil {
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
	return web.Meta{Monitor: m, Encoder: capture.JPEGEncoderName, AudioDevice: e.settings.Audio, AudioName: audioName(e.settings.Audio)}
}

// Start starts serving. Capture itself starts with the first viewer.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		return nil
	}
	scr, err := capture.NewScreen(e.settings.screen())
	if err != nil {
		return err
	}
	// Video: one slot where the newest frame wins, replayed to a joiner.
	b := fanout.New(source(scr), fanout.Options[*media.Frame]{Logger: e.log, Replay: true, Prepare: web.MJPEGPrepare})
	audio := fanout.New(audioSource(e.settings.Audio), fanout.Options[*media.AudioChunk]{Logger: e.log,
		Queue: web.AudioQueue, Prepare: web.AudioPrepare})
	srv, err := web.New(web.Config{Listen: e.settings.Listen, Token: e.settings.Token, Assets: assets.Viewer,
		Video: b, Audio: audio, Mode: e.settings.Mode, Access: e.settings.Access, Logger: e.log})
	if err != nil {
		b.Close()
		audio.Close()
		return fmt.Errorf("starting the server: %w", err)
	}
	srv.SetMeta(e.meta())
	if why := capture.ControlAvailable(); why != nil {
		srv.SetControlUnavailable(why.Error())
	}
	e.srv, e.b, e.audio = srv, b, audio
	e.applyPauseLocked()
	if err := e.applyControlLocked(); err != nil {
		e.log.Warn("remote control stays off", "err", err)
	}
	return nil
}

// applyPauseLocked stops whatever is not shared: both while paused, the
// screen in audio-only mode and the sound in screen-only mode.
func (e *Engine) applyPauseLocked() {
	if e.srv == nil {
		return
	}
	m := e.srv.Mode()
	e.b.SetPaused(e.paused || m == access.ModeAudio)
	e.audio.SetPaused(e.paused || m == access.ModeScreen)
}

// Stop ends every stream and stops serving; it waits until all is closed.
func (e *Engine) Stop() {
	e.mu.Lock()
	srv, b, audio, inj := e.srv, e.b, e.audio, e.inj
	e.srv, e.b, e.audio, e.inj = nil, nil, nil, nil
	e.paused = false
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		b.Close()
		audio.Close()
	}
	// After the server: no control handler can reopen the input now.
	if inj != nil {
		_ = inj.ReleaseAll()
	}
}

// SetPaused pauses or resumes capture of screen and sound; viewers stay connected.
func (e *Engine) SetPaused(p bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return ErrNotSharing
	}
	e.paused = p
	e.applyPauseLocked()
	return nil
}

// SetMode switches between screen+audio, screen only and audio only, live.
func (e *Engine) SetMode(m access.Mode) error {
	if _, err := access.ParseMode(string(m)); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings.Mode = m
	if e.srv != nil {
		e.srv.SetMode(m)
		e.applyPauseLocked()
	}
	return nil
}

// SetAudio switches the audio device (an ID from capture.AudioDevices, "" for
// none), live: listeners stay connected and hear the new device.
func (e *Engine) SetAudio(device string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings.Audio = device
	if e.srv != nil {
		e.audio.SetSource(audioSource(device))
		e.srv.SetMeta(e.meta())
	}
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

func (e *Engine) applyLocked(s Settings) error {
	scr, err := capture.NewScreen(s.screen())
	if err != nil {
		return err
	}
	e.settings = s
	if e.srv != nil {
		e.b.SetSource(source(scr))
		e.srv.SetMeta(e.meta())
		if e.inj != nil {
			if r, err := sharedRect(s); err == nil {
				e.inj.setRect(r)
			}
		}
	}
	return nil
}

// Settings returns the current settings.
func (e *Engine) Settings() Settings {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settings
}

// Server returns the running server, or nil when not sharing.
func (e *Engine) Server() *web.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv
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
	Viewers []access.Viewer // present or waiting, oldest first
}

// State returns the share's state and counters.
func (e *Engine) State() State {
	e.mu.Lock()
	srv, paused := e.srv, e.paused
	e.mu.Unlock()
	if srv == nil {
		return State{}
	}
	vs, _ := srv.Viewers()
	return State{Sharing: true, Paused: paused, Port: srv.Port(), Wanted: srv.PortMoved(), URLs: srv.ViewerURLs(), Exposed: srv.Exposed(), Status: srv.Status(), Viewers: vs}
}

// SetAccess changes the PIN, approval and viewer limit; live for viewers
// who come next.
func (e *Engine) SetAccess(a access.Access) error {
	if err := a.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings.Access = a
	if e.srv != nil {
		return e.srv.SetAccess(a)
	}
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
