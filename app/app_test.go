package app

import (
	"errors"
	"image"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/test"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/capture/audio"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/version"
	"github.com/deskcast/deskcast/web"
)

// fakeEngine records what the app asks of it.
type fakeEngine struct {
	mu       sync.Mutex
	settings engine.Settings
	sharing  bool
	paused   bool
	failNext error
	viewers  []access.Viewer
	publish  *web.PublishStatus
	portal   string // the Wayland portal's status
}

func (f *fakeEngine) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.sharing = true
	return nil
}
func (f *fakeEngine) Changes() <-chan struct{} { return nil } // the tests refresh by hand

func (f *fakeEngine) Stop() { f.mu.Lock(); f.sharing, f.paused = false, false; f.mu.Unlock() }
func (f *fakeEngine) SetPaused(p bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sharing {
		return engine.ErrNotSharing
	}
	f.paused = p
	return nil
}
func (f *fakeEngine) SetMonitor(i int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i > 1 {
		return capture.ErrNoMonitor
	}
	f.settings.Monitor = i
	return nil
}
func (f *fakeEngine) SetAudio(d string) error {
	f.mu.Lock()
	f.settings.Audio = d
	f.mu.Unlock()
	return nil
}
func (f *fakeEngine) SetQuality(fps, q, mw int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settings.FPS, f.settings.Quality, f.settings.MaxWidth = fps, q, mw
	return nil
}
func (f *fakeEngine) SetAccess(a access.Access) error {
	if err := a.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	f.settings.Access = a
	f.mu.Unlock()
	return nil
}
func (f *fakeEngine) Allow(id string) error      { return f.setViewer(id, access.ViewerAllowed) }
func (f *fakeEngine) Deny(id string) error       { return f.setViewer(id, access.ViewerDenied) }
func (f *fakeEngine) Disconnect(id string) error { return f.setViewer(id, access.ViewerDisconnected) }
func (f *fakeEngine) setViewer(id string, st access.ViewerState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.viewers {
		if f.viewers[i].ID == id {
			f.viewers[i].State = st
			return nil
		}
	}
	return errors.New("no such viewer")
}
func (f *fakeEngine) SetPointer(m web.PointerMode) error {
	f.mu.Lock()
	f.settings.Pointer = m
	f.mu.Unlock()
	return nil
}
func (f *fakeEngine) SetPortalToken(tok string) {
	f.mu.Lock()
	f.settings.PortalToken = tok
	f.mu.Unlock()
}

func (f *fakeEngine) SetPublish(p engine.Publish) error {
	if p.URL != "" && !strings.HasPrefix(p.URL, "http") {
		return errors.New("publish URL: want the media server's WHIP endpoint")
	}
	f.mu.Lock()
	f.settings.Publish = p
	f.mu.Unlock()
	return nil
}
func (f *fakeEngine) SetControl(m access.ControlMode) error {
	f.mu.Lock()
	f.settings.Control = m
	f.mu.Unlock()
	return nil
}
func (f *fakeEngine) Grant(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.viewers {
		f.viewers[i].Control = f.viewers[i].ID == id
	}
	return nil
}
func (f *fakeEngine) Revoke(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.viewers {
		if id == "" || f.viewers[i].ID == id {
			f.viewers[i].Control = false
		}
	}
}
func (f *fakeEngine) SetListen(a string) { f.mu.Lock(); f.settings.Listen = a; f.mu.Unlock() }
func (f *fakeEngine) Settings() engine.Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settings
}
func (f *fakeEngine) State() engine.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sharing {
		return engine.State{}
	}
	st := engine.State{Sharing: true, Paused: f.paused, Port: 8765, Status: web.Status{State: "sharing", Viewers: 2, FPS: 30}}
	for _, u := range []struct{ iface, ip string }{{"wlan0", "192.168.1.20"}, {"eth0", "10.0.0.7"}, {"loopback", "127.0.0.1"}} {
		st.URLs = append(st.URLs, web.ViewerURL{Interface: u.iface, IP: net.ParseIP(u.ip),
			URL: "http://" + u.ip + ":8765/?t=0123456789abcdef0123456789abcdef"})
	}
	st.Publish = f.publish
	st.Portal = f.portal
	if f.paused {
		st.Status.State = "paused"
	}
	st.Viewers = slices.Clone(f.viewers)
	for _, v := range f.viewers {
		if v.Control {
			st.Status.Control.Controller = v.ID
		}
	}
	return st
}

var fakeDevices = Devices{
	Monitors: func() ([]capture.Monitor, error) {
		return []capture.Monitor{
			{Index: 0, Bounds: image.Rect(0, 0, 1920, 1080), Primary: true},
			{Index: 1, Bounds: image.Rect(1920, 0, 3200, 1024)},
		}, nil
	},
	Audio: func() ([]audio.Device, error) {
		return []audio.Device{{ID: "default", Name: "Default input"}, {ID: "pulse:x.monitor", Name: "Monitor of Speakers", Monitor: true}}, nil
	},
	ControlAvailable: func() error { return nil },
}

func newTestApp(t *testing.T) (*App, *fakeEngine, fyne.App) {
	t.Helper()
	fa := test.NewTempApp(t)
	f := &fakeEngine{settings: engine.Defaults()}
	return New(fa, f, fakeDevices, Options{}), f, fa
}

// decodeQR reads the QR code in the window as the test driver renders it.
func decodeQR(t *testing.T, w fyne.Window) string {
	t.Helper()
	img := w.Canvas().Capture()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		path := filepath.Join(t.TempDir(), "window.png")
		if f, ferr := os.Create(path); ferr == nil {
			_ = png.Encode(f, img)
			f.Close()
		}
		t.Fatalf("no QR code in the window (rendered to %s): %v", path, err)
	}
	return res.GetText()
}

func TestWindow(t *testing.T) {
	a, f, fa := newTestApp(t)
	w := a.win
	if w.status.Text != "Stopped" || w.startBtn.Text != "Start sharing" || !w.pauseBtn.Disabled() {
		t.Fatalf("idle window: status %q, button %q, pause disabled %v", w.status.Text, w.startBtn.Text, w.pauseBtn.Disabled())
	}
	if want := "Deskcast " + version.String(); w.version.Text != want || !strings.Contains(want, "(commit ") {
		t.Fatalf("version line %q, want %q with the commit", w.version.Text, want)
	}

	test.Tap(w.startBtn)
	if !f.sharing || w.startBtn.Text != "Stop sharing" || w.pauseBtn.Disabled() {
		t.Fatalf("after Start: sharing %v, button %q", f.sharing, w.startBtn.Text)
	}
	want := "http://192.168.1.20:8765/?t=0123456789abcdef0123456789abcdef"
	if w.url.Text != want {
		t.Fatalf("URL label %q, want %q", w.url.Text, want)
	}
	if got := decodeQR(t, a.Window()); got != want {
		t.Fatalf("QR code says %q, want %q", got, want)
	}
	if !strings.HasPrefix(w.status.Text, "Sharing · 2 viewers · 30 fps") {
		t.Fatalf("status line %q", w.status.Text)
	}

	t.Run("interface selector changes the code", func(t *testing.T) {
		w.iface.SetSelected("eth0 10.0.0.7")
		want := "http://10.0.0.7:8765/?t=0123456789abcdef0123456789abcdef"
		if w.url.Text != want || decodeQR(t, a.Window()) != want {
			t.Fatalf("after choosing eth0: label %q", w.url.Text)
		}
		if fa.Preferences().String(prefInterface) != "eth0 10.0.0.7" {
			t.Fatal("interface not remembered")
		}
	})
	t.Run("copy link", func(t *testing.T) {
		test.Tap(w.copyBtn)
		if got := fa.Clipboard().Content(); !strings.HasPrefix(got, "http://10.0.0.7:8765/?t=") {
			t.Fatalf("clipboard %q", got)
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		test.Tap(w.pauseBtn)
		if !f.paused || w.pauseBtn.Text != "Resume" || !strings.HasPrefix(w.status.Text, "Paused") {
			t.Fatalf("after Pause: paused %v, button %q, status %q", f.paused, w.pauseBtn.Text, w.status.Text)
		}
		test.Tap(w.pauseBtn)
		if f.paused || w.pauseBtn.Text != "Pause" {
			t.Fatalf("after Resume: paused %v, button %q", f.paused, w.pauseBtn.Text)
		}
	})

	pickers := []struct {
		name  string
		pick  func()
		check func() bool
	}{
		{"monitor", func() { w.monitor.SetSelected("2: 1280×1024") }, func() bool {
			return f.settings.Monitor == 1 && fa.Preferences().Int(prefMonitor) == 1
		}},
		{"audio device", func() { w.audio.SetSelected("Monitor of Speakers") }, func() bool {
			return f.settings.Audio == "pulse:x.monitor" && fa.Preferences().String(prefAudio) == "pulse:x.monitor"
		}},
		{"no audio", func() { w.audio.SetSelected("None") }, func() bool { return f.settings.Audio == "" }},
		{"quality preset", func() { w.quality.SetSelectedIndex(0) }, func() bool {
			return f.settings.Quality == 60 && f.settings.MaxWidth == 1280 && fa.Preferences().Int(prefPreset) == 0
		}},
		{"frame rate", func() { w.fps.SetSelectedIndex(2) }, func() bool { return f.settings.FPS == 60 }},
	}
	for _, tc := range pickers {
		t.Run(tc.name, func(t *testing.T) {
			tc.pick()
			if !tc.check() {
				t.Fatalf("settings after picking: %+v", f.Settings())
			}
		})
	}

	t.Run("a failed start shows in the status line", func(t *testing.T) {
		test.Tap(w.startBtn) // stop
		f.failNext = errors.New("listening on :8765: permission denied")
		test.Tap(w.startBtn)
		if !strings.Contains(w.status.Text, "permission denied") {
			t.Fatalf("status %q", w.status.Text)
		}
	})
}

func TestSettingsAreRemembered(t *testing.T) {
	fa := test.NewTempApp(t)
	p := fa.Preferences()
	p.SetInt(prefMonitor, 1)
	p.SetString(prefAudio, "pulse:x.monitor")
	p.SetInt(prefPreset, 2)
	p.SetInt(prefFPS, 15)
	p.SetString(prefListen, "127.0.0.1:9000")
	f := &fakeEngine{settings: engine.Defaults()}
	New(fa, f, fakeDevices, Options{})
	s := f.Settings()
	if s.Monitor != 1 || s.Audio != "pulse:x.monitor" || s.Quality != 90 || s.MaxWidth != 1920 || s.FPS != 15 || s.Listen != "127.0.0.1:9000" {
		t.Fatalf("settings from preferences: %+v", s)
	}
}

func TestFlagsWinOverRememberedSettings(t *testing.T) {
	fa := test.NewTempApp(t)
	fa.Preferences().SetInt(prefMonitor, 1)
	fa.Preferences().SetInt(prefFPS, 15)
	fa.Preferences().SetString(prefListen, ":9000")
	f := &fakeEngine{settings: engine.Defaults()}
	f.settings.Listen = "127.0.0.1:8765"
	New(fa, f, fakeDevices, Options{Given: map[string]bool{"monitor": true, "listen": true}})
	if s := f.Settings(); s.Monitor != 0 || s.Listen != "127.0.0.1:8765" || s.FPS != 15 {
		t.Fatalf("settings: %+v; want the flags' monitor and listen, the remembered fps", s)
	}
}

func TestTrayMenu(t *testing.T) {
	a, f, _ := newTestApp(t)
	labels := func(m *fyne.Menu) []string {
		var out []string
		for _, it := range m.Items {
			out = append(out, it.Label)
		}
		return out
	}
	find := func(m *fyne.Menu, label string) *fyne.MenuItem {
		for _, it := range m.Items {
			if it.Label == label {
				return it
			}
		}
		t.Fatalf("no %q in %q", label, labels(m))
		return nil
	}
	m := a.trayMenu(f.State())
	if got := strings.Join(labels(m), ","); got != "Start sharing,,Monitor,Audio,Quality,Allow remote control,Show pointer,Highlight pointer,,Show window,Copy link,,Quit" {
		t.Fatalf("idle tray menu: %s", got)
	}
	find(m, "Start sharing").Action()
	m = a.trayMenu(f.State())
	find(m, "Pause").Action()
	if !f.paused || a.trayMenu(f.State()).Items[1].Label != "Resume" {
		t.Fatal("Pause from the tray did not pause")
	}
	mons := find(m, "Monitor").ChildMenu.Items
	if len(mons) != 2 || mons[0].Label != "1: 1920×1080 (primary)" || !mons[0].Checked || mons[1].Checked {
		t.Fatalf("monitor submenu: %+v", mons)
	}
	mons[1].Action()
	if f.settings.Monitor != 1 || !find(a.trayMenu(f.State()), "Monitor").ChildMenu.Items[1].Checked {
		t.Fatal("choosing monitor 2 from the tray")
	}
	auds := find(m, "Audio").ChildMenu.Items
	if len(auds) != 3 || auds[0].Label != "None" || !auds[0].Checked {
		t.Fatalf("audio submenu: %+v", auds)
	}
	auds[2].Action()
	if f.settings.Audio != "pulse:x.monitor" {
		t.Fatal("choosing an audio device from the tray")
	}
	if menuKey(m) == menuKey(a.trayMenu(f.State())) {
		t.Fatal("menu key did not change with the state")
	}
}

func TestChineseTranslation(t *testing.T) {
	t.Setenv("LANG", "zh_CN.UTF-8")
	t.Setenv("LANGUAGE", "zh_CN")
	t.Setenv("LC_ALL", "zh_CN.UTF-8")
	if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		t.Setenv("LANG", "en_US.UTF-8")
		t.Setenv("LANGUAGE", "en")
		t.Setenv("LC_ALL", "en_US.UTF-8")
		_ = lang.AddTranslationsFS(translations, "translations")
	}()
	if got := lang.L("Start sharing"); got != "开始共享" {
		t.Fatalf(`lang.L("Start sharing") = %q under a Chinese locale`, got)
	}
	if got := lang.N("{{.Count}} viewers", 3, map[string]any{"Count": 3}); got != "3 位观众" {
		t.Fatalf("plural = %q", got)
	}
}

// TestPointerSetting: "Show pointer" and "Highlight pointer" in the tray and
// the window set the engine's pointer mode, and are remembered.
func TestPointerSetting(t *testing.T) {
	a, f, fa := newTestApp(t)
	item := func(label string) *fyne.MenuItem {
		for _, it := range a.trayMenu(f.State()).Items {
			if it.Label == label {
				return it
			}
		}
		t.Fatalf("no %q in the tray menu", label)
		return nil
	}
	steps := []struct {
		name string
		do   func()
		want web.PointerMode
	}{
		{"tray: highlight", func() { item("Highlight pointer").Action() }, web.PointerHighlight},
		{"tray: hide", func() { item("Show pointer").Action() }, web.PointerOff},
		{"tray: show again keeps the highlight", func() { item("Show pointer").Action() }, web.PointerHighlight},
		{"window: no highlight", func() { a.win.hilite.SetChecked(false) }, web.PointerOn},
		{"window: hide", func() { a.win.pointer.SetChecked(false) }, web.PointerOff},
		{"window: show", func() { a.win.pointer.SetChecked(true) }, web.PointerOn},
	}
	for _, s := range steps {
		s.do()
		if got := f.Settings().Pointer; got != s.want {
			t.Fatalf("%s: pointer %q, want %q", s.name, got, s.want)
		}
		if item("Show pointer").Checked != s.want.Shown() || item("Highlight pointer").Checked != (s.want == web.PointerHighlight) {
			t.Fatalf("%s: the tray's checks do not follow", s.name)
		}
		if a.win.pointer.Checked != s.want.Shown() {
			t.Fatalf("%s: the window's check does not follow", s.name)
		}
	}
	if fa.Preferences().Bool(prefPointerOff) || fa.Preferences().String(prefPointer) != "on" {
		t.Fatal("the pointer setting is not remembered")
	}
}

// TestPublishSetting: the window's "Publish to a media server", with its
// server and token, sets the engine's publishing, shows what it is doing
// and whose rules apply there, and is remembered; turned off, the server
// and token stay for next time.
func TestPublishSetting(t *testing.T) {
	a, f, fa := newTestApp(t)
	w := a.win
	test.Tap(w.startBtn)
	test.Type(w.publishURL, "http://mtx:8889/deskcast/whip")
	test.Type(w.publishToken, "user:pass")
	w.publish.SetChecked(true)
	if p := f.Settings().Publish; p.URL != "http://mtx:8889/deskcast/whip" || p.Token != "user:pass" {
		t.Fatalf("publishing %+v after ticking it", p)
	}
	f.mu.Lock()
	f.publish = &web.PublishStatus{State: "reconnecting", URL: "http://mtx:8889/deskcast/whip",
		Error: "the media server refused the token (401 Unauthorized)"}
	f.mu.Unlock()
	a.refresh()
	if !w.publishState.Visible() || !strings.Contains(w.publishState.Text, "401") || !strings.Contains(w.publishState.Text, "own rules") {
		t.Fatalf("publishing state %q (shown %v)", w.publishState.Text, w.publishState.Visible())
	}
	f.mu.Lock()
	f.publish = &web.PublishStatus{State: "live", Bitrate: 2_100_000, FPS: 30, RTTMs: 3}
	f.mu.Unlock()
	a.refresh()
	if !strings.Contains(w.publishState.Text, "live, 2.1 Mbit/s, 30 fps") {
		t.Fatalf("publishing state %q", w.publishState.Text)
	}

	f2 := &fakeEngine{settings: engine.Defaults()}
	New(fa, f2, fakeDevices, Options{})
	if p := f2.Settings().Publish; p.URL != "http://mtx:8889/deskcast/whip" || p.Token != "user:pass" {
		t.Fatalf("remembered publishing %+v", p)
	}
	f3 := &fakeEngine{settings: engine.Defaults()}
	New(fa, f3, fakeDevices, Options{Given: map[string]bool{"publish": true}})
	if p := f3.Settings().Publish; p.URL != "" {
		t.Fatalf("the remembered server overrides --publish: %+v", p)
	}

	w.publish.SetChecked(false)
	if p := f.Settings().Publish; p.URL != "" {
		t.Fatalf("still publishing %+v after unticking", p)
	}
	if p := fa.Preferences(); p.Bool(prefPublishOn) || p.String(prefPublishURL) == "" || p.String(prefPublishToken) != "user:pass" {
		t.Fatal("unticked: publishing should be off but the server and token kept")
	}

	w.publishURL.SetText("rtmp://mtx/live")
	w.publish.SetChecked(true)
	a.refresh()
	if w.publish.Checked || f.Settings().Publish.URL != "" || !strings.Contains(w.status.Text, "WHIP") {
		t.Fatalf("a bad URL: ticked %v, publishing %+v, status %q", w.publish.Checked, f.Settings().Publish, w.status.Text)
	}
}

// TestWaylandPortal: the portal's state shows in the status line and the
// tray menu while the desktop's dialog waits, and the permission (restore
// token) the portal gives is remembered and handed to the engine at the
// next run, unless one came from the environment.
func TestWaylandPortal(t *testing.T) {
	a, f, fa := newTestApp(t)
	a.Start()
	f.mu.Lock()
	f.portal = capture.PortalWaiting
	f.mu.Unlock()
	a.refresh()
	if want := "Screen: " + capture.PortalWaiting; a.win.status.Text != want {
		t.Fatalf("status %q while the dialog waits, want %q", a.win.status.Text, want)
	}
	if it := a.trayMenu(f.State()).Items[0]; it.Label != "Screen: "+capture.PortalWaiting || !it.Disabled {
		t.Fatalf("the tray menu's first item %q (disabled %v), want the portal's state, disabled", it.Label, it.Disabled)
	}
	f.mu.Lock()
	f.portal, f.settings.PortalToken = "", "token-1"
	f.mu.Unlock()
	a.refresh()
	if !strings.HasPrefix(a.win.status.Text, "Sharing") {
		t.Fatalf("status %q once capture runs, want Sharing…", a.win.status.Text)
	}
	if it := a.trayMenu(f.State()).Items[0]; it.Label != "Stop sharing" {
		t.Fatalf("the tray menu starts with %q once capture runs, want Stop sharing", it.Label)
	}
	if got := fa.Preferences().String(prefPortalToken); got != "token-1" {
		t.Fatalf("remembered token %q, want token-1", got)
	}

	// The next run: the stored token goes to the engine…
	f2 := &fakeEngine{settings: engine.Defaults()}
	New(fa, f2, fakeDevices, Options{})
	if got := f2.Settings().PortalToken; got != "token-1" {
		t.Fatalf("engine's token %q at the next run, want the stored token-1", got)
	}
	// …unless the environment gave one (DESKCAST_PORTAL_RESTORE_TOKEN).
	f3 := &fakeEngine{settings: engine.Defaults()}
	f3.settings.PortalToken = "from-env"
	New(fa, f3, fakeDevices, Options{})
	if got := f3.Settings().PortalToken; got != "from-env" {
		t.Fatalf("engine's token %q with one from the environment, want from-env", got)
	}
}
