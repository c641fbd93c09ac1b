// Package access decides who may watch a share and drive its desktop: sessions, PIN, lockout, approval, presence and control grants.
package access

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Approval says whether a new viewer waits for the presenter.
type Approval string

const (
	ApproveOff  Approval = ""     // anyone with the link (and PIN) watches at once
	ApproveAsk  Approval = "ask"  // wait for the presenter; denied when nobody answers in time
	ApproveAuto Approval = "auto" // wait for the presenter; allowed when nobody answers in time
)

// ParseApproval reads --approve's value.
func ParseApproval(s string) (Approval, error) {
	switch strings.ToLower(s) {
	case "", "off", "false", "no":
		return ApproveOff, nil
	case "ask", "true", "yes", "on":
		return ApproveAsk, nil
	case "auto":
		return ApproveAuto, nil
	}
	return "", fmt.Errorf("approve %q: want ask, auto or off", s)
}

// DefaultMaxViewers is how many viewers a share takes unless told otherwise.
const DefaultMaxViewers = 20

// Access is who may watch. The zero value lets in anyone with the link, up to
// DefaultMaxViewers.
type Access struct {
	PIN            string        // "" for none; else 4 to 12 digits
	Approve        Approval      // whether viewers wait for the presenter
	ApproveTimeout time.Duration // how long a viewer waits before the default answer (30 s)
	MaxViewers     int           // 0 means DefaultMaxViewers; -1 means no limit
}

// Validate checks the PIN and the limits.
func (a Access) Validate() error {
	if err := ValidPIN(a.PIN); a.PIN != "" && err != nil {
		return err
	}
	switch a.Approve {
	case ApproveOff, ApproveAsk, ApproveAuto:
	default: // ParseApproval turns the spellings people type into these
		return fmt.Errorf("approve %q: want %q, %q or %q", a.Approve, ApproveOff, ApproveAsk, ApproveAuto)
	}
	if a.MaxViewers < -1 {
		return errors.New("max viewers: want a positive number, 0 for the default or -1 for no limit")
	}
	return nil
}

func (a Access) max() int {
	switch {
	case a.MaxViewers == 0:
		return DefaultMaxViewers
	case a.MaxViewers < 0:
		return int(^uint(0) >> 1)
	}
	return a.MaxViewers
}

func (a Access) timeout() time.Duration {
	if a.ApproveTimeout <= 0 {
		return 30 * time.Second
	}
	return a.ApproveTimeout
}

// ValidPIN reports whether p can be a PIN: 4 to 12 digits.
func ValidPIN(p string) error {
	if len(p) < 4 || len(p) > 12 {
		return errors.New("pin: want 4 to 12 digits")
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return errors.New("pin: use digits only")
		}
	}
	return nil
}

// ViewerState is where a viewer stands.
type ViewerState string

const (
	ViewerNeedsPIN     ViewerState = "pin"          // has the link, not yet the PIN
	ViewerWaiting      ViewerState = "waiting"      // waits for the presenter
	ViewerAllowed      ViewerState = "watching"     // may watch
	ViewerDenied       ViewerState = "denied"       // the presenter said no, or nobody answered
	ViewerDisconnected ViewerState = "disconnected" // the presenter sent it away
)

// Viewer is one browser (one cookie) as the presenter sees it.
type Viewer struct {
	ID      string      `json:"id"` // public; not the cookie's secret
	Addr    string      `json:"addr"`
	Browser string      `json:"browser"`
	State   ViewerState `json:"state"`
	Since   time.Time   `json:"since"`
	Streams int         `json:"streams"` // open media connections
	Present bool        `json:"present"` // streaming, or seen in the last few seconds
	Control bool        `json:"control"` // granted remote control
}

// BrowserName turns a User-Agent into a short "Browser on System", for the
// presenter's list.
func BrowserName(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	var b string
	switch {
	case has("Edg/") || has("EdgA/") || has("EdgiOS/"):
		b = "Edge"
	case has("OPR/") || has("Opera"):
		b = "Opera"
	case has("SamsungBrowser/"):
		b = "Samsung Internet"
	case has("Firefox/") || has("FxiOS/"):
		b = "Firefox"
	case has("HeadlessChrome/"):
		b = "Headless Chrome"
	case has("Chrome/") || has("CriOS/") || has("Chromium/"):
		b = "Chrome"
	case has("Safari/") && has("Version/"):
		b = "Safari"
	case has("curl/"):
		b = "curl"
	case has("VLC/") || has("LibVLC/"):
		b = "VLC"
	case has("Lavf/"):
		b = "ffmpeg"
	}
	var o string
	switch {
	case has("iPhone"):
		o = "iPhone"
	case has("iPad"):
		o = "iPad"
	case has("Android"):
		o = "Android"
	case has("CrOS"):
		o = "ChromeOS"
	case has("Windows"):
		o = "Windows"
	case has("Mac OS X") || has("Macintosh"):
		o = "macOS"
	case has("Linux") || has("X11"):
		o = "Linux"
	}
	switch {
	case b == "" && o == "":
		if ua == "" {
			return "unknown client"
		}
		return "other client"
	case b == "":
		return "browser on " + o
	case o == "":
		return b
	}
	return b + " on " + o
}
