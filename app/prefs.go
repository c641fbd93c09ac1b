package app

import (
	"net"
	"strconv"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/web"
)

// Preference keys; settings survive restarts through Fyne's preferences.
const (
	prefLaunched  = "launched"
	prefMonitor   = "monitor"
	prefAudio     = "audio"
	prefPreset    = "preset"
	prefFPS       = "fps"
	prefListen    = "listen"
	prefInterface = "interface"
	prefPIN       = "pin"
	prefApprove   = "approve"
	// prefPointer is the pointer's look when shown (on or highlight), and
	// prefPointerOff whether it is hidden, so that showing it again brings
	// the highlight back.
	prefPointer    = "pointer"
	prefPointerOff = "pointer_off"
	// The media server to publish to, kept when publishing is turned off.
	// The token is kept as Fyne keeps every preference, in a file only
	// this user can read.
	prefPublishOn    = "publish_on"
	prefPublishURL   = "publish_url"
	prefPublishToken = "publish_token"
	// prefPortalToken is the desktop's permission to share the screen
	// without its dialog (Wayland): the ScreenCast portal's restore token.
	prefPortalToken = "portal_restore_token"
)

// loadPrefs applies the remembered settings to the engine, except those
// the command line set.
func (a *App) loadPrefs(given map[string]bool) {
	p := a.fa.Preferences()
	if m := p.IntWithFallback(prefMonitor, -1); m >= 0 && !given["monitor"] {
		if err := a.eng.SetMonitor(m); err != nil {
			a.log.Warn("remembered monitor is gone", "monitor", m+1, "err", err)
		}
	}
	if id := p.String(prefAudio); id != "" && !given["audio"] {
		_ = a.eng.SetAudio(id)
	}
	s := a.eng.Settings()
	fps, q, mw := s.FPS, s.Quality, s.MaxWidth
	if i := p.IntWithFallback(prefPreset, -1); i >= 0 && i < len(Presets) && !given["quality"] && !given["max-width"] {
		q, mw = Presets[i].Quality, Presets[i].MaxWidth
	}
	if f := p.Int(prefFPS); f > 0 && !given["fps"] {
		fps = f
	}
	_ = a.eng.SetQuality(fps, q, mw)
	if l := p.String(prefListen); l != "" && !given["listen"] {
		a.eng.SetListen(l)
	}
	if !given["pointer"] {
		m := web.PointerMode(p.StringWithFallback(prefPointer, string(web.PointerOn)))
		if p.Bool(prefPointerOff) {
			m = web.PointerOff
		}
		if err := a.eng.SetPointer(m); err != nil {
			a.log.Warn("remembered pointer setting", "err", err)
		}
	}
	if p.Bool(prefPublishOn) && !given["publish"] {
		if err := a.eng.SetPublish(engine.Publish{URL: p.String(prefPublishURL), Token: p.String(prefPublishToken)}); err != nil {
			a.log.Warn("remembered media server", "err", err)
		}
	}
	// A token given in the environment (automation) wins over the stored one.
	if tok := p.String(prefPortalToken); tok != "" && a.eng.Settings().PortalToken == "" {
		a.eng.SetPortalToken(tok)
	}
	a.iface = p.String(prefInterface)
	acc := a.eng.Settings().Access
	if pin := p.String(prefPIN); pin != "" && !given["pin"] && access.ValidPIN(pin) == nil {
		acc.PIN = pin
	}
	if p.Bool(prefApprove) && !given["approve"] {
		acc.Approve, acc.ApproveTimeout = access.ApproveAsk, 2*time.Minute
	}
	if err := a.eng.SetAccess(acc); err != nil {
		a.log.Warn("remembered access settings", "err", err)
	}
}

// rememberPortalToken stores a new permission the portal gave, so that the
// next run shares without the dialog.
func (a *App) rememberPortalToken() {
	p := a.fa.Preferences()
	if tok := a.eng.Settings().PortalToken; tok != "" && tok != p.String(prefPortalToken) {
		p.SetString(prefPortalToken, tok)
	}
}

// rememberListen keeps the address sharing listens on: the host as it was
// asked for (so a local-only share stays local) with the port it got.
func (a *App) rememberListen() {
	st := a.eng.State()
	if st.Port == 0 {
		return
	}
	host, _, err := net.SplitHostPort(a.eng.Settings().Listen)
	if err != nil {
		host = ""
	}
	a.fa.Preferences().SetString(prefListen, net.JoinHostPort(host, strconv.Itoa(st.Port)))
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
