package app

import (
	"fmt"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/engine"
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
	hint     *widget.Label
	startBtn *widget.Button
	pauseBtn *widget.Button
	monitor  *widget.Select
	audio    *widget.Select
	quality  *widget.Select
	fps      *widget.Select

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

	form := widget.NewForm(
		widget.NewFormItem(lang.L("Monitor"), w.monitor),
		widget.NewFormItem(lang.L("Audio"), w.audio),
		widget.NewFormItem(lang.L("Quality"), w.quality),
		widget.NewFormItem(lang.L("Frame rate"), w.fps),
		widget.NewFormItem(lang.L("Address"), w.iface),
	)
	urlRow := container.NewBorder(nil, nil, nil, w.copyBtn, w.url)
	buttons := container.NewGridWithColumns(2, w.startBtn, w.pauseBtn)
	w.w.SetContent(container.NewVBox(w.status, w.qr, w.idle, urlRow, w.hint, buttons, form, layout.NewSpacer()))
	w.w.Resize(fyne.NewSize(440, 720))
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
func audioID(ds []capture.AudioDevice, label string) string {
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
		w.hint.SetText(fmt.Sprintf(lang.L("Nobody connected yet? The phone or TV must be on the same Wi-Fi, and a firewall must allow TCP port %d."), st.Port))
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
}
