package app

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/lang"
	"fyne.io/systray"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/assets"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/web"
)

// The tray icon's colour says the state: grey idle, blue sharing, amber paused.
var (
	iconIdle    = tinted("idle", color.RGBA{0x6e, 0x76, 0x81, 255})
	iconSharing = fyne.NewStaticResource("deskcast-sharing.png", assets.Icon)
	iconPaused  = tinted("paused", color.RGBA{0xd2, 0x99, 0x22, 255})
)

// tinted recolours the icon's blue background.
func tinted(name string, c color.RGBA) fyne.Resource {
	src, err := png.Decode(bytes.NewReader(assets.Icon))
	if err != nil {
		return fyne.NewStaticResource("deskcast.png", assets.Icon)
	}
	img := image.NewRGBA(src.Bounds())
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			r, _, b, al := src.At(x, y).RGBA()
			if al > 0 && b>>8 > 200 && r>>8 < 80 { // the blue background
				img.SetRGBA(x, y, c)
			} else {
				img.Set(x, y, src.At(x, y))
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return fyne.NewStaticResource("deskcast-"+name+".png", buf.Bytes())
}

// trayState is what the tray shows; the menu is rebuilt only when it changes.
type trayState struct {
	menu    string
	icon    fyne.Resource
	tooltip string
}

func (a *App) setupTray() {
	desk, ok := a.fa.(desktop.App)
	if !ok {
		a.tray = false
		return
	}
	desk.SetSystemTrayWindow(a.win.w)
	a.fa.Lifecycle().SetOnStarted(func() {
		a.trayStarted.Store(true)
		a.trayShown.tooltip = "" // the next refresh applies the real one
		systray.SetTooltip("Deskcast")
	})
}

func (a *App) updateTray(st engine.State) {
	desk := a.fa.(desktop.App)
	m := a.trayMenu(st)
	key := menuKey(m)
	icon := iconIdle
	switch {
	case st.Paused:
		icon = iconPaused
	case st.Sharing:
		icon = iconSharing
	}
	tip := "Deskcast — " + lang.L("Stopped")
	switch {
	case st.Sharing && st.Portal != "":
		tip = "Deskcast — " + lang.L("Screen") + ": " + st.Portal
	case st.Sharing:
		tip = "Deskcast — " + lang.N("{{.Count}} viewers", st.Status.Viewers, map[string]any{"Count": st.Status.Viewers})
	}
	if key != a.trayShown.menu {
		desk.SetSystemTrayMenu(m)
	}
	if icon != a.trayShown.icon {
		desk.SetSystemTrayIcon(icon)
	}
	if tip != a.trayShown.tooltip && a.trayStarted.Load() {
		systray.SetTooltip(tip)
		a.trayShown.tooltip = tip
	}
	a.trayShown.menu, a.trayShown.icon = key, icon
}

// trayMenu builds the tray menu for the state.
func (a *App) trayMenu(st engine.State) *fyne.Menu {
	s := a.eng.Settings()
	var items []*fyne.MenuItem
	if st.Sharing && st.Portal != "" {
		// What the desktop's screen-sharing portal is doing (Wayland): its
		// dialog waiting for the presenter, a refusal, the end.
		it := fyne.NewMenuItem(lang.L("Screen")+": "+st.Portal, nil)
		it.Disabled = true
		items = append(items, it)
	}
	if st.Sharing {
		items = append(items, fyne.NewMenuItem(lang.L("Stop sharing"), a.Stop))
		pause := fyne.NewMenuItem(lang.L("Pause"), a.TogglePause)
		if st.Paused {
			pause.Label = lang.L("Resume")
		}
		items = append(items, pause)
	} else {
		items = append(items, fyne.NewMenuItem(lang.L("Start sharing"), a.Start))
	}
	items = append(items, fyne.NewMenuItemSeparator())

	a.mu.Lock()
	monitors, audio := a.monitors, a.audio
	a.mu.Unlock()
	mon := fyne.NewMenuItem(lang.L("Monitor"), nil)
	var mons []*fyne.MenuItem
	for _, m := range monitors {
		i := m.Index
		it := fyne.NewMenuItem(m.String(), func() { a.SetMonitor(i) })
		it.Checked = i == s.Monitor
		mons = append(mons, it)
	}
	mon.ChildMenu = fyne.NewMenu("", mons...)
	aud := fyne.NewMenuItem(lang.L("Audio"), nil)
	none := fyne.NewMenuItem(lang.L("None"), func() { a.SetAudio("") })
	none.Checked = s.Audio == ""
	auds := []*fyne.MenuItem{none}
	for _, d := range audio {
		id := d.ID
		it := fyne.NewMenuItem(d.Name, func() { a.SetAudio(id) })
		it.Checked = id == s.Audio
		auds = append(auds, it)
	}
	aud.ChildMenu = fyne.NewMenu("", auds...)
	q := fyne.NewMenuItem(lang.L("Quality"), nil)
	var qs []*fyne.MenuItem
	for i, p := range Presets {
		it := fyne.NewMenuItem(lang.L(p.Name), func() { a.SetPreset(i) })
		it.Checked = p.Quality == s.Quality && p.MaxWidth == s.MaxWidth
		qs = append(qs, it)
	}
	qs = append(qs, fyne.NewMenuItemSeparator())
	for _, r := range FrameRates {
		it := fyne.NewMenuItem(fmt.Sprintf("%d fps", r), func() { a.SetFPS(r) })
		it.Checked = r == s.FPS
		qs = append(qs, it)
	}
	q.ChildMenu = fyne.NewMenu("", qs...)
	items = append(items, mon, aud, q)
	ctl := fyne.NewMenuItem(lang.L("Allow remote control"), func() { a.SetControl(s.Control == access.ControlOff) })
	ctl.Checked = s.Control != access.ControlOff
	if a.controlWhy() != "" {
		// A menu item cannot say why; its label says where to read it.
		ctl.Label = lang.L("Remote control: not available here (see the window)")
		ctl.Disabled = true
	}
	items = append(items, ctl)
	ptr := fyne.NewMenuItem(lang.L("Show pointer"), func() { a.SetShowPointer(!s.Pointer.Shown()) })
	ptr.Checked = s.Pointer.Shown()
	hl := fyne.NewMenuItem(lang.L("Highlight pointer"), func() { a.SetHighlightPointer(s.Pointer != web.PointerHighlight) })
	hl.Checked = s.Pointer == web.PointerHighlight
	items = append(items, ptr, hl)
	if st.Status.Control.Controller != "" || s.Control == access.ControlAll {
		items = append(items, fyne.NewMenuItem(lang.L("Stop remote control"), a.StopControl))
	}
	items = append(items, fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(lang.L("Show window"), func() { a.win.w.Show(); a.win.w.RequestFocus() }),
		fyne.NewMenuItem(lang.L("Copy link"), a.CopyLink),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(lang.L("Quit"), a.Quit))
	return fyne.NewMenu("Deskcast", items...)
}

// menuKey describes a menu's labels and checks, to see whether it changed.
func menuKey(m *fyne.Menu) string {
	var b strings.Builder
	var walk func(items []*fyne.MenuItem, depth int)
	walk = func(items []*fyne.MenuItem, depth int) {
		for _, it := range items {
			fmt.Fprintf(&b, "%d|%s|%v|%v;", depth, it.Label, it.Checked, it.Disabled)
			if it.ChildMenu != nil {
				walk(it.ChildMenu.Items, depth+1)
			}
		}
	}
	walk(m.Items, 0)
	return b.String()
}
