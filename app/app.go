// Package app is Deskcast's desktop app: a tray menu and a window with the
// QR code, over the engine. It is the only package that imports Fyne.
package app

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/lang"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/capture/audio"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/input"
	"github.com/deskcast/deskcast/web"
)

// Engine is what the app drives: *engine.Engine, or a fake in tests.
type Engine interface {
	Start() error
	Stop()
	SetPaused(bool) error
	SetMonitor(int) error
	SetAudio(device string) error
	SetQuality(fps, quality, maxWidth int) error
	SetListen(addr string)
	SetAccess(access.Access) error
	Allow(id string) error
	Deny(id string) error
	Disconnect(id string) error
	SetControl(access.ControlMode) error
	SetPointer(web.PointerMode) error
	SetPublish(engine.Publish) error
	SetPortalToken(string)
	Grant(id string) error
	Revoke(id string)
	Settings() engine.Settings
	State() engine.State
	// Changes receives a value soon after the share changes (see engine.Engine.Changes).
	Changes() <-chan struct{}
}

// Devices lists what can be shared; capture's functions, or fakes in tests.
type Devices struct {
	Monitors         func() ([]capture.Monitor, error)
	Audio            func() ([]audio.Device, error)
	ControlAvailable func() error // nil, or why input cannot be injected here (e.g. Wayland)
}

// SystemDevices lists the real monitors and audio inputs.
var SystemDevices = Devices{Monitors: capture.Monitors, Audio: audio.Devices, ControlAvailable: input.Available}

//go:embed translations
var translations embed.FS

// Preset is a quality choice of the menus.
type Preset struct {
	Name     string
	Quality  int
	MaxWidth int
}

// Presets are the quality choices, smoothest first.
var Presets = []Preset{
	{"Smooth (720p)", 60, 1280},
	{"Balanced", 70, 0},
	{"Sharp (1080p)", 90, 1920},
}

// FrameRates are the frame-rate choices.
var FrameRates = []int{15, 30, 60}

// App is the running desktop app.
type App struct {
	fa   fyne.App
	eng  Engine
	dev  Devices
	log  *slog.Logger
	tray bool // a system tray is available

	win *window

	mu       sync.Mutex
	monitors []capture.Monitor
	audio    []audio.Device
	iface    string // preferred interface name for the QR code
	lastErr  string
	ctlWhy   string // why remote control cannot work here; "" when it can
	state    engine.State

	trayStarted atomic.Bool // systray has connected; raw systray calls are safe
	quitting    atomic.Bool // Quit has begun: the window and tray stay as they are
	trayShown   trayState   // what the tray shows now (UI goroutine only)
}

// Options tune New.
type Options struct {
	Tray       bool // set a tray menu (only when a D-Bus session bus or OS tray exists)
	StartShare bool // start sharing at once
	// Given names the settings the command line set (flag names: monitor,
	// audio, fps, quality, max-width, listen); remembered ones do not override them.
	Given  map[string]bool
	Logger *slog.Logger
}

// Main runs the desktop app over eng until Quit or until ctx ends.
func Main(ctx context.Context, eng Engine, opt Options) {
	fa := fyneapp.NewWithID("io.deskcast.Deskcast")
	opt.Tray = opt.Tray && TrayAvailable()
	New(fa, eng, SystemDevices, opt).Run(ctx)
}

// New builds the app over eng: window, tray menu, remembered settings.
// It does not block; call Run, or drive it in tests.
func New(fa fyne.App, eng Engine, dev Devices, opt Options) *App {
	if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
		slog.Warn("loading translations", "err", err)
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if fa.Icon() == nil { // set by `fyne package`, not by go build
		fa.SetIcon(iconSharing)
	}
	a := &App{fa: fa, eng: eng, dev: dev, log: opt.Logger, tray: opt.Tray}
	a.loadPrefs(opt.Given)
	a.refreshDevices()
	a.win = newWindow(a)
	if a.tray {
		a.setupTray()
	}
	first := !fa.Preferences().Bool(prefLaunched)
	fa.Preferences().SetBool(prefLaunched, true)
	if opt.StartShare {
		a.Start()
	}
	if first || !a.tray || opt.StartShare {
		a.win.w.Show()
	}
	a.refresh()
	return a
}

// Window returns the main window.
func (a *App) Window() fyne.Window { return a.win.w }

// Run shows the app until Quit, or until ctx ends.
func (a *App) Run(ctx context.Context) {
	stop := make(chan struct{})
	var once sync.Once
	// Stop ticking while the driver still runs: once it has stopped,
	// fyne.Do would run the refresh on this goroutine instead of the UI's.
	a.fa.Lifecycle().SetOnStopped(func() { once.Do(func() { close(stop) }) })
	var wg sync.WaitGroup
	wg.Go(func() { a.watch(ctx, stop, time.Second, fyne.Do) })
	a.fa.Run()
	once.Do(func() { close(stop) })
	wg.Wait()
	a.eng.Stop()
}

// watch refreshes the window and tray through do (fyne.Do: widgets change
// on the UI goroutine only): at once when the engine reports a change, so a
// waiting viewer's question appears without delay, and every tick for the
// counters (fps, bitrate) that change without notice. Every tenth tick it
// also lists the devices again (a monitor or microphone plugged in meanwhile).
// It returns when stop closes, or quits the app when ctx ends.
func (a *App) watch(ctx context.Context, stop <-chan struct{}, tick time.Duration, do func(func())) {
	t := time.NewTicker(tick)
	defer t.Stop()
	changes := a.eng.Changes()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			do(a.Quit)
			return
		case <-changes:
			do(a.refresh)
		case <-t.C:
			if n%10 == 0 {
				a.refreshDevices()
			}
			do(a.refresh)
		}
	}
}

// Quit stops sharing and ends the app.
func (a *App) Quit() {
	// Stopping posts a change notice; a refresh it queues may run after Fyne
	// has closed the tray's D-Bus connection, where setting the tray icon
	// panics (godbus SetMust), so nothing is refreshed from here on.
	a.quitting.Store(true)
	a.eng.Stop()
	a.fa.Quit()
}

func (a *App) refreshDevices() {
	ms, err := a.dev.Monitors()
	if err != nil {
		a.log.Warn("listing monitors", "err", err)
	}
	ds, err := a.dev.Audio()
	if err != nil {
		a.log.Warn("listing audio inputs", "err", err)
	}
	why := ""
	if a.dev.ControlAvailable != nil {
		if err := a.dev.ControlAvailable(); err != nil {
			why = err.Error()
		}
	}
	a.mu.Lock()
	a.monitors, a.audio, a.ctlWhy = ms, ds, why
	a.mu.Unlock()
}

// Start starts sharing; a failure shows in the status line.
func (a *App) Start() {
	err := a.eng.Start()
	a.setErr(err)
	if err == nil {
		a.rememberListen()
	}
	a.refresh()
}

// Stop stops sharing.
func (a *App) Stop() {
	a.eng.Stop()
	a.refresh()
}

// TogglePause pauses or resumes.
func (a *App) TogglePause() {
	st := a.eng.State()
	if !st.Sharing {
		return
	}
	a.setErr(a.eng.SetPaused(!st.Paused))
	a.refresh()
}

// SetMonitor shares monitor i (0-based), live.
func (a *App) SetMonitor(i int) {
	if err := a.eng.SetMonitor(i); err != nil {
		a.setErr(err)
		return
	}
	a.fa.Preferences().SetInt(prefMonitor, i)
	a.refresh()
}

// SetAudio shares the audio device id ("" for none), live.
func (a *App) SetAudio(id string) {
	if err := a.eng.SetAudio(id); err != nil {
		a.setErr(err)
		return
	}
	a.fa.Preferences().SetString(prefAudio, id)
	a.refresh()
}

// SetPreset picks a quality preset, live.
func (a *App) SetPreset(i int) {
	p := Presets[i]
	if err := a.eng.SetQuality(a.eng.Settings().FPS, p.Quality, p.MaxWidth); err != nil {
		a.setErr(err)
		return
	}
	a.fa.Preferences().SetInt(prefPreset, i)
	a.refresh()
}

// SetFPS picks a frame rate, live.
func (a *App) SetFPS(fps int) {
	s := a.eng.Settings()
	if err := a.eng.SetQuality(fps, s.Quality, s.MaxWidth); err != nil {
		a.setErr(err)
		return
	}
	a.fa.Preferences().SetInt(prefFPS, fps)
	a.refresh()
}

// SetInterface picks which LAN address the QR code shows.
func (a *App) SetInterface(name string) {
	a.mu.Lock()
	a.iface = name
	a.mu.Unlock()
	a.fa.Preferences().SetString(prefInterface, name)
	a.refresh()
}

// SetPIN sets the PIN new viewers must enter; "" for none.
func (a *App) SetPIN(pin string) error {
	acc := a.eng.Settings().Access
	acc.PIN = pin
	if err := a.eng.SetAccess(acc); err != nil {
		return err
	}
	a.fa.Preferences().SetString(prefPIN, pin)
	a.refresh()
	return nil
}

// SetApprove turns on or off asking the presenter before each new viewer watches.
func (a *App) SetApprove(on bool) {
	acc := a.eng.Settings().Access
	acc.Approve = access.ApproveOff
	if on {
		acc.Approve = access.ApproveAsk
		// Nobody answering in the app means no: give the presenter time to see the question.
		acc.ApproveTimeout = 2 * time.Minute
	}
	if err := a.eng.SetAccess(acc); err != nil {
		a.setErr(err)
		return
	}
	a.fa.Preferences().SetBool(prefApprove, on)
	a.refresh()
}

// SetControl turns "Allow remote control" on or off. On, viewers still
// need a grant from the viewer list (unless --control=all started it so).
func (a *App) SetControl(on bool) {
	mode := access.ControlOff
	if on {
		mode = access.ControlGrant
	}
	a.setErr(a.eng.SetControl(mode))
	a.refresh()
}

// SetShowPointer turns "Show pointer" on or off: whether viewers see this
// desktop's mouse pointer. Turned on, it keeps the highlight as it was.
func (a *App) SetShowPointer(on bool) {
	m := web.PointerOff
	if on {
		m = web.PointerOn
		if a.fa.Preferences().String(prefPointer) == string(web.PointerHighlight) {
			m = web.PointerHighlight
		}
	}
	a.setPointer(m)
}

// SetPublish publishes the share to a media server as well (its WHIP
// endpoint and token), or stops publishing when url is "". Remembered.
func (a *App) SetPublish(url, token string) error {
	if err := a.eng.SetPublish(engine.Publish{URL: url, Token: token}); err != nil {
		a.setErr(err)
		return err
	}
	p := a.fa.Preferences()
	p.SetBool(prefPublishOn, url != "")
	if url != "" {
		p.SetString(prefPublishURL, url)
		p.SetString(prefPublishToken, token)
	}
	return nil
}

// SetHighlightPointer turns the soft ring around the pointer on the viewer
// page on or off; on also shows the pointer.
func (a *App) SetHighlightPointer(on bool) {
	m := web.PointerOn
	if on {
		m = web.PointerHighlight
	}
	a.setPointer(m)
}

func (a *App) setPointer(m web.PointerMode) {
	if err := a.eng.SetPointer(m); err != nil {
		a.setErr(err)
		return
	}
	if m != web.PointerOff {
		a.fa.Preferences().SetString(prefPointer, string(m))
	}
	a.fa.Preferences().SetBool(prefPointerOff, m == web.PointerOff)
	a.refresh()
}

// GrantControl gives remote control to one viewer; RevokeControl takes it back.
func (a *App) GrantControl(id string)  { a.viewerAction(a.eng.Grant, id) }
func (a *App) RevokeControl(id string) { a.eng.Revoke(id); a.refresh() }

// StopControl takes remote control back from everyone at once, and turns
// off control for all viewers (--control=all) down to per-viewer grants.
func (a *App) StopControl() {
	// Down to grants first, so no viewer of --control=all can press
	// anything between the revoke and the switch.
	if a.eng.Settings().Control == access.ControlAll {
		a.setErr(a.eng.SetControl(access.ControlGrant))
	}
	a.eng.Revoke("")
	a.refresh()
}

// controlWhy says why remote control cannot work on this desktop, or "";
// checked with the device lists, as it opens a display connection.
func (a *App) controlWhy() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctlWhy
}

// Allow lets a waiting viewer watch; Deny refuses it; Disconnect sends a watching one away.
func (a *App) Allow(id string)      { a.viewerAction(a.eng.Allow, id) }
func (a *App) Deny(id string)       { a.viewerAction(a.eng.Deny, id) }
func (a *App) Disconnect(id string) { a.viewerAction(a.eng.Disconnect, id) }

func (a *App) viewerAction(f func(string) error, id string) {
	a.setErr(f(id))
	a.refresh()
}

// CopyLink puts the viewer URL on the clipboard.
func (a *App) CopyLink() {
	if u := a.URL(); u.URL != "" {
		a.fa.Clipboard().SetContent(u.URL)
	}
}

// URL is the viewer URL the QR code shows: the chosen interface's, else the first LAN one.
func (a *App) URL() web.ViewerURL {
	a.mu.Lock()
	defer a.mu.Unlock()
	urls := a.state.URLs
	for _, u := range urls {
		if label(u) == a.iface || u.Interface == a.iface {
			return u
		}
	}
	if len(urls) > 0 {
		return urls[0]
	}
	return web.ViewerURL{}
}

// label names an address for the interface selector, e.g. "wlan0 192.168.1.20".
func label(u web.ViewerURL) string {
	return u.Interface + " " + u.IP.String()
}

func (a *App) setErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.lastErr = err.Error()
		a.log.Warn("action failed", "err", err)
	} else {
		a.lastErr = ""
	}
}

// refresh reads the engine's state and updates window and tray; on the UI goroutine.
func (a *App) refresh() {
	if a.quitting.Load() {
		return
	}
	st := a.eng.State()
	a.mu.Lock()
	a.state = st
	a.mu.Unlock()
	a.rememberPortalToken()
	a.win.update(st)
	if a.tray {
		a.updateTray(st)
	}
}

// statusLine says how the share is doing, e.g. "Sharing · 2 viewers · 30 fps · 4.1 Mbit/s".
func (a *App) statusLine(st engine.State, bitrate float64) string {
	a.mu.Lock()
	errText := a.lastErr
	a.mu.Unlock()
	switch {
	case errText != "":
		return lang.L("Error") + ": " + errText
	case !st.Sharing:
		return lang.L("Stopped")
	case st.Portal != "":
		return lang.L("Screen") + ": " + st.Portal
	case st.Status.State == "error":
		return lang.L("Screen capture problem") + ": " + st.Status.Error
	}
	state := lang.L("Sharing")
	if st.Paused {
		state = lang.L("Paused")
	}
	return fmt.Sprintf("%s · %s · %d fps · %.1f Mbit/s", state,
		lang.N("{{.Count}} viewers", st.Status.Viewers, map[string]any{"Count": st.Status.Viewers}),
		st.Status.FPS, bitrate/1e6)
}
