package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture/audio"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/version"
	"github.com/deskcast/deskcast/web"
)

// window is the main window: the QR code of the viewer URL and the controls.
type window struct {
	a *App
	w fyne.Window

	qr       *canvas.Image
	idle     *widget.Label
	url      *widget.Label
	copyBtn  *widget.Button
	iface    *widget.Select
	status   *widget.Label
	version  *widget.Label
	hint     *widget.Label
	startBtn *widget.Button
	pauseBtn *widget.Button
	monitor  *widget.Select
	audio    *widget.Select
	quality  *widget.Select
	fps      *widget.Select
	pin      *widget.Entry
	approve  *widget.Check
	exposure *widget.Label
	control  *widget.Check
	pointer  *widget.Check
	hilite   *widget.Check
	ctlNote  *widget.Label
	stopCtl  *widget.Button
	viewers  *fyne.Container
	// Publishing to a media server: on or off, its WHIP URL and token, and
	// what it is doing.
	publish      *widget.Check
	publishURL   *widget.Entry
	publishToken *widget.Entry
	publishState *widget.Label
	asks         map[string]dialog.Dialog // open "let this viewer in?" questions, by viewer ID
	shownVs      string                   // what the viewer list shows, to rebuild it only on change

	updating  bool // set while update changes widgets, so their callbacks stay quiet
	shownURL  string
	lastBytes uint64
	lastAt    time.Time
	bitrate   float64
	lonely    time.Time // since when nobody watches
}

func newWindow(a *App) *window {
	w := &window{a: a, w: a.fa.NewWindow("Deskcast")}
	w.qr = canvas.NewImageFromImage(nil)
	w.qr.FillMode = canvas.ImageFillContain
	w.qr.ScaleMode = canvas.ImageScalePixels
	w.qr.SetMinSize(fyne.NewSize(320, 320))
	w.qr.Hide()
	w.idle = widget.NewLabelWithStyle(lang.L("Press Start sharing, then scan the code with a phone."), fyne.TextAlignCenter, fyne.TextStyle{})
	w.idle.Wrapping = fyne.TextWrapWord
	w.url = widget.NewLabel("")
	w.url.Selectable = true
	w.url.Truncation = fyne.TextTruncateEllipsis
	w.copyBtn = widget.NewButton(lang.L("Copy"), a.CopyLink)
	w.iface = widget.NewSelect(nil, func(s string) {
		if !w.updating {
			a.SetInterface(s)
		}
	})
	w.status = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	w.hint = widget.NewLabel("")
	w.hint.Wrapping = fyne.TextWrapWord
	w.hint.Hide()
	w.startBtn = widget.NewButton(lang.L("Start sharing"), func() {
		if a.eng.State().Sharing {
			a.Stop()
		} else {
			a.Start()
		}
	})
	w.startBtn.Importance = widget.HighImportance
	w.pauseBtn = widget.NewButton(lang.L("Pause"), a.TogglePause)
	w.monitor = widget.NewSelect(nil, func(s string) {
		if w.updating {
			return
		}
		a.mu.Lock()
		ms := a.monitors
		a.mu.Unlock()
		for _, m := range ms {
			if m.String() == s {
				a.SetMonitor(m.Index)
			}
		}
	})
	w.audio = widget.NewSelect(nil, func(s string) {
		if w.updating {
			return
		}
		a.mu.Lock()
		ds := a.audio
		a.mu.Unlock()
		a.SetAudio(audioID(ds, s))
	})
	var presetNames []string
	for _, p := range Presets {
		presetNames = append(presetNames, lang.L(p.Name))
	}
	w.quality = widget.NewSelect(presetNames, func(string) {
		if !w.updating {
			a.SetPreset(w.quality.SelectedIndex())
		}
	})
	var rates []string
	for _, r := range FrameRates {
		rates = append(rates, strconv.Itoa(r)+" fps")
	}
	w.fps = widget.NewSelect(rates, func(string) {
		if !w.updating {
			a.SetFPS(FrameRates[w.fps.SelectedIndex()])
		}
	})

	w.pin = widget.NewPasswordEntry() // hidden: the window may be on the shared screen
	w.pin.SetPlaceHolder(lang.L("none"))
	w.pin.Validator = func(s string) error {
		if s == "" {
			return nil
		}
		return access.ValidPIN(s)
	}
	w.pin.OnChanged = func(s string) {
		if !w.updating && w.pin.Validator(s) == nil {
			_ = a.SetPIN(s)
		}
	}
	w.approve = widget.NewCheck(lang.L("Ask me before each new viewer watches"), func(on bool) {
		if !w.updating {
			a.SetApprove(on)
		}
	})
	w.control = widget.NewCheck(lang.L("Allow remote control"), func(on bool) {
		if !w.updating {
			a.SetControl(on)
		}
	})
	w.pointer = widget.NewCheck(lang.L("Show pointer"), func(on bool) {
		if !w.updating {
			a.SetShowPointer(on)
		}
	})
	w.hilite = widget.NewCheck(lang.L("Highlight pointer"), func(on bool) {
		if !w.updating {
			a.SetHighlightPointer(on)
		}
	})
	w.ctlNote = widget.NewLabel("")
	w.ctlNote.Wrapping = fyne.TextWrapWord
	w.stopCtl = widget.NewButton(lang.L("Stop remote control"), a.StopControl)
	w.stopCtl.Importance = widget.DangerImportance
	w.stopCtl.Hide()
	w.exposure = widget.NewLabel("")
	w.exposure.Wrapping = fyne.TextWrapWord
	w.viewers = container.NewVBox()
	w.publishURL = widget.NewEntry()
	w.publishURL.SetPlaceHolder("http://server:8889/deskcast/whip")
	w.publishToken = widget.NewPasswordEntry() // hidden: the window may be on the shared screen
	w.publishToken.SetPlaceHolder(lang.L("token (if the server asks for one)"))
	applyPublish := func() {
		if w.updating {
			return
		}
		url := ""
		if w.publish.Checked {
			url = strings.TrimSpace(w.publishURL.Text)
		}
		if err := a.SetPublish(url, w.publishToken.Text); err != nil {
			w.publish.SetChecked(false)
		}
	}
	w.publish = widget.NewCheck(lang.L("Publish to a media server (WHIP)"), func(bool) { applyPublish() })
	w.publishURL.OnSubmitted = func(string) { applyPublish() }
	w.publishToken.OnSubmitted = func(string) { applyPublish() }
	w.publishState = widget.NewLabel("")
	w.publishState.Wrapping = fyne.TextWrapWord
	w.publishState.Hide()
	// Which build this is, for bug reports; the same as --version and /api/status.
	w.version = widget.NewLabelWithStyle("Deskcast "+version.String(), fyne.TextAlignTrailing, fyne.TextStyle{Italic: true})
	w.version.Importance = widget.LowImportance
	w.asks = map[string]dialog.Dialog{}

	form := widget.NewForm(
		widget.NewFormItem(lang.L("Monitor"), w.monitor),
		widget.NewFormItem(lang.L("Audio"), w.audio),
		widget.NewFormItem(lang.L("Quality"), w.quality),
		widget.NewFormItem(lang.L("Frame rate"), w.fps),
		widget.NewFormItem(lang.L("Address"), w.iface),
		widget.NewFormItem(lang.L("PIN"), w.pin),
		widget.NewFormItem("", w.approve),
		widget.NewFormItem("", w.control),
		widget.NewFormItem("", container.NewHBox(w.pointer, w.hilite)),
		widget.NewFormItem("", w.publish),
		widget.NewFormItem(lang.L("Server"), w.publishURL),
		widget.NewFormItem(lang.L("Token"), w.publishToken),
	)
	urlRow := container.NewBorder(nil, nil, nil, w.copyBtn, w.url)
	buttons := container.NewGridWithColumns(2, w.startBtn, w.pauseBtn)
	body := container.NewVBox(w.status, w.stopCtl, w.qr, w.idle, urlRow, w.hint, buttons, form, w.ctlNote, w.publishState, w.exposure,
		widget.NewLabelWithStyle(lang.L("Viewers"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), w.viewers, layout.NewSpacer(),
		w.version)
	w.w.SetContent(container.NewVScroll(body))
	w.w.Resize(fyne.NewSize(460, 820))
	w.w.SetCloseIntercept(func() {
		if a.tray {
			w.w.Hide() // the tray icon brings it back
		} else {
			a.Quit()
		}
	})
	return w
}

// audioID maps a menu label back to a device ID; "" is None.
func audioID(ds []audio.Device, label string) string {
	for _, d := range ds {
		if d.Name == label {
			return d.ID
		}
	}
	return ""
}

func (w *window) update(st engine.State) {
	a := w.a
	w.updating = true
	defer func() { w.updating = false }()

	now := time.Now()
	if !w.lastAt.IsZero() && st.Status.BytesSent >= w.lastBytes {
		w.bitrate = float64(st.Status.BytesSent-w.lastBytes) * 8 / now.Sub(w.lastAt).Seconds()
	}
	w.lastBytes, w.lastAt = st.Status.BytesSent, now
	w.status.SetText(a.statusLine(st, w.bitrate))

	if st.Sharing {
		w.startBtn.SetText(lang.L("Stop sharing"))
		w.pauseBtn.Enable()
	} else {
		w.startBtn.SetText(lang.L("Start sharing"))
		w.pauseBtn.Disable()
	}
	if st.Paused {
		w.pauseBtn.SetText(lang.L("Resume"))
	} else {
		w.pauseBtn.SetText(lang.L("Pause"))
	}

	u := a.URL()
	if u.URL != w.shownURL {
		w.shownURL = u.URL
		if u.URL == "" {
			w.qr.Image = nil
			w.qr.Hide()
			w.idle.Show()
		} else if img, err := qrImage(u.URL, 512); err == nil {
			w.qr.Image = img
			w.qr.Show()
			w.idle.Hide()
		}
		w.url.SetText(u.URL)
		w.w.Content().Refresh() // a canvas object's Show does not re-run its container's layout
	}
	var labels []string
	for _, v := range st.URLs {
		labels = append(labels, label(v))
	}
	w.iface.Options = labels
	if u.URL != "" {
		w.iface.SetSelected(label(u))
	}
	w.iface.Refresh()

	if st.Sharing && st.Status.Viewers == 0 {
		if w.lonely.IsZero() {
			w.lonely = now
		}
	} else {
		w.lonely = time.Time{}
	}
	if !w.lonely.IsZero() && now.Sub(w.lonely) > 10*time.Second {
		w.hint.SetText(fmt.Sprintf(lang.L("Nobody connected yet? The phone or TV must be on the same Wi-Fi, and a firewall must allow TCP and UDP port %d (TCP for the page and MJPEG, UDP for WebRTC video)."), st.Port))
		w.hint.Show()
	} else {
		w.hint.Hide()
	}

	s := a.eng.Settings()
	a.mu.Lock()
	var mons []string
	monSel := ""
	for _, m := range a.monitors {
		mons = append(mons, m.String())
		if m.Index == s.Monitor {
			monSel = m.String()
		}
	}
	auds := []string{lang.L("None")}
	sel := lang.L("None")
	for _, d := range a.audio {
		auds = append(auds, d.Name)
		if d.ID == s.Audio {
			sel = d.Name
		}
	}
	a.mu.Unlock()
	w.monitor.Options = mons
	if monSel != "" {
		w.monitor.SetSelected(monSel)
	}
	w.audio.Options = auds
	w.audio.SetSelected(sel)
	if i := presetIndex(s.Quality, s.MaxWidth); i >= 0 {
		w.quality.SetSelectedIndex(i)
	} else {
		w.quality.ClearSelected()
	}
	for i, r := range FrameRates {
		if r == s.FPS {
			w.fps.SetSelectedIndex(i)
		}
	}
	if w.pin.Text != s.Access.PIN && !w.pinFocused() {
		w.pin.SetText(s.Access.PIN)
	}
	w.approve.SetChecked(s.Access.Approve != access.ApproveOff)
	w.control.SetChecked(s.Control != access.ControlOff)
	w.pointer.SetChecked(s.Pointer.Shown())
	w.hilite.SetChecked(s.Pointer == web.PointerHighlight)
	switch why := a.controlWhy(); {
	case why != "":
		w.control.Disable()
		w.ctlNote.SetText(lang.L("Remote control is not available here") + ": " + why)
	case s.Control == access.ControlAll:
		w.ctlNote.SetText(lang.L("Every viewer can use your mouse and keyboard."))
	case s.Control != access.ControlOff:
		w.ctlNote.SetText(lang.L("Give control to one viewer at a time from the list below."))
	default:
		w.ctlNote.SetText("")
	}
	if st.Status.Control.Controller != "" || st.Sharing && s.Control == access.ControlAll {
		w.stopCtl.Show()
	} else {
		w.stopCtl.Hide()
	}
	w.updatePublish(st, s.Publish)
	exp := exposure(st, s.Listen)
	if st.Wanted != 0 { // 0 too while not sharing
		exp = fmt.Sprintf(lang.L("Port %d is busy, so Deskcast uses port %d."), st.Wanted, st.Port) + " " + exp
	}
	w.exposure.SetText(exp)
	w.updateViewers(st.Viewers)
}

// updatePublish shows the publishing setting and what it is doing.
func (w *window) updatePublish(st engine.State, p engine.Publish) {
	w.publish.SetChecked(p.URL != "")
	focused := w.w.Canvas().Focused()
	if p.URL != "" && focused != w.publishURL && focused != w.publishToken {
		w.publishURL.SetText(p.URL)
		w.publishToken.SetText(p.Token)
	}
	if w.publishURL.Text == "" && focused != w.publishURL {
		w.publishURL.SetText(w.a.fa.Preferences().String(prefPublishURL))
		w.publishToken.SetText(w.a.fa.Preferences().String(prefPublishToken))
	}
	ps := st.Publish
	if ps == nil || p.URL == "" {
		w.publishState.Hide()
		return
	}
	var line string
	switch ps.State {
	case "live":
		line = fmt.Sprintf(lang.L("Publishing: live, %.1f Mbit/s, %.0f fps, %.0f ms round trip."), float64(ps.Bitrate)/1e6, ps.FPS, ps.RTTMs)
	case "connecting":
		line = lang.L("Publishing: connecting to the media server…")
	case "reconnecting":
		line = lang.L("Publishing: trying again") + " (" + ps.Error + ")"
	default:
		line = lang.L("Publishing stopped") + ": " + ps.Error
	}
	line += " " + lang.L("The PIN and approval apply on this network; the media server's own rules decide who watches there.")
	if ps.View != "" {
		line += " " + lang.L("Its viewers watch at") + " " + ps.View
	}
	w.publishState.SetText(line)
	w.publishState.Show()
}

// pinFocused reports whether the presenter is typing a PIN right now.
func (w *window) pinFocused() bool {
	return w.w.Canvas().Focused() == w.pin
}

// exposure says who can reach the share.
func exposure(st engine.State, listen string) string {
	if !st.Sharing {
		if host, _, err := net.SplitHostPort(listen); err == nil && isLoopbackHost(host) {
			return lang.L("Only this computer will be able to watch (listening on a local address).")
		}
		return lang.L("When sharing, anyone on this computer's networks who has the link (and the PIN, if set) can watch.")
	}
	lan := st.Exposed
	if len(lan) == 0 {
		return lang.L("Only this computer can watch (listening on a local address).")
	}
	return fmt.Sprintf(lang.L("Reachable on %s: anyone there with the link (and the PIN, if set) can watch. Start with --listen 127.0.0.1:PORT to keep it to this computer."),
		strings.Join(lan, ", "))
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}

// updateViewers rebuilds the viewer list when it changed, and asks about
// each new viewer waiting to be let in.
func (w *window) updateViewers(vs []access.Viewer) {
	key := string(w.a.eng.Settings().Control) + "|"
	for _, v := range vs {
		key += v.ID + string(v.State) + strconv.Itoa(v.Streams) + strconv.FormatBool(v.Control) + ";"
	}
	if key != w.shownVs {
		w.shownVs = key
		w.viewers.RemoveAll()
		if len(vs) == 0 {
			w.viewers.Add(widget.NewLabel(lang.L("Nobody is watching.")))
		}
		for _, v := range vs {
			w.viewers.Add(w.viewerRow(v))
		}
		w.viewers.Refresh()
	}
	waiting := map[string]bool{}
	for _, v := range vs {
		if v.State != access.ViewerWaiting {
			continue
		}
		waiting[v.ID] = true
		if w.asks[v.ID] == nil {
			w.ask(v)
		}
	}
	for id, d := range w.asks {
		if !waiting[id] { // answered, timed out, or gone
			delete(w.asks, id)
			d.Hide()
		}
	}
}

func (w *window) viewerRow(v access.Viewer) fyne.CanvasObject {
	text := v.Addr + " · " + v.Browser + " · " + stateText(v.State)
	l := widget.NewLabel(text)
	l.Truncation = fyne.TextTruncateEllipsis
	a := w.a
	var btns []fyne.CanvasObject
	switch v.State {
	case access.ViewerWaiting:
		btns = append(btns, widget.NewButton(lang.L("Allow"), func() { a.Allow(v.ID) }),
			widget.NewButton(lang.L("Deny"), func() { a.Deny(v.ID) }))
	case access.ViewerAllowed:
		if v.Control {
			btns = append(btns, widget.NewButton(lang.L("Take back control"), func() { a.RevokeControl(v.ID) }))
		} else if a.eng.Settings().Control == access.ControlGrant {
			btns = append(btns, widget.NewButton(lang.L("Give control"), func() { a.GrantControl(v.ID) }))
		}
		btns = append(btns, widget.NewButton(lang.L("Disconnect"), func() { a.Disconnect(v.ID) }))
	case access.ViewerNeedsPIN:
		btns = append(btns, widget.NewButton(lang.L("Disconnect"), func() { a.Disconnect(v.ID) }))
	}
	return container.NewBorder(nil, nil, nil, container.NewHBox(btns...), l)
}

// ask shows "let this viewer watch?" and brings the window forward.
func (w *window) ask(v access.Viewer) {
	a := w.a
	msg := widget.NewLabel(fmt.Sprintf(lang.L("%s (%s) wants to watch your screen."), v.Addr, v.Browser))
	msg.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustomConfirm(lang.L("Let this viewer watch?"), lang.L("Allow"), lang.L("Deny"), msg, func(ok bool) {
		if w.asks[v.ID] == nil {
			return // closed by update: no longer waiting
		}
		delete(w.asks, v.ID)
		if ok {
			a.Allow(v.ID)
		} else {
			a.Deny(v.ID)
		}
	}, w.w)
	w.asks[v.ID] = d
	w.w.Show()
	w.w.RequestFocus()
	d.Show()
	a.fa.SendNotification(fyne.NewNotification("Deskcast", fmt.Sprintf(lang.L("%s (%s) wants to watch your screen."), v.Addr, v.Browser)))
}

func stateText(s access.ViewerState) string {
	switch s {
	case access.ViewerNeedsPIN:
		return lang.L("entering the PIN")
	case access.ViewerWaiting:
		return lang.L("waiting for you")
	case access.ViewerAllowed:
		return lang.L("watching")
	case access.ViewerDenied:
		return lang.L("not let in")
	}
	return lang.L("disconnected")
}
