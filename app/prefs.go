package app

import "strconv"

// Preference keys; settings survive restarts through Fyne's preferences.
const (
	prefLaunched  = "launched"
	prefMonitor   = "monitor"
	prefAudio     = "audio"
	prefPreset    = "preset"
	prefFPS       = "fps"
	prefPort      = "port"
	prefInterface = "interface"
)

// loadPrefs applies the remembered settings to the engine.
func (a *App) loadPrefs() {
	p := a.fa.Preferences()
	if m := p.IntWithFallback(prefMonitor, -1); m >= 0 {
		if err := a.eng.SetMonitor(m); err != nil {
			a.log.Warn("remembered monitor is gone", "monitor", m+1, "err", err)
		}
	}
	if id := p.String(prefAudio); id != "" {
		_ = a.eng.SetAudio(id)
	}
	s := a.eng.Settings()
	fps, q, mw := s.FPS, s.Quality, s.MaxWidth
	if i := p.IntWithFallback(prefPreset, -1); i >= 0 && i < len(Presets) {
		q, mw = Presets[i].Quality, Presets[i].MaxWidth
	}
	if f := p.Int(prefFPS); f > 0 {
		fps = f
	}
	_ = a.eng.SetQuality(fps, q, mw)
	if port := p.Int(prefPort); port > 0 {
		a.eng.SetListen(":" + strconv.Itoa(port))
	}
	a.iface = p.String(prefInterface)
}

// presetIndex returns the preset the settings match, or -1.
func presetIndex(quality, maxWidth int) int {
	for i, p := range Presets {
		if p.Quality == quality && p.MaxWidth == maxWidth {
			return i
		}
	}
	return -1
}
