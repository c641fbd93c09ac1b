package app

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

// findButton returns the first button labelled text under o, or nil.
func findButton(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	switch o := o.(type) {
	case *widget.Button:
		if o.Text == text {
			return o
		}
	case *fyne.Container:
		for _, c := range o.Objects {
			if b := findButton(t, c, text); b != nil {
				return b
			}
		}
	case fyne.Widget:
		r := test.TempWidgetRenderer(t, o)
		for _, c := range r.Objects() {
			if b := findButton(t, c, text); b != nil {
				return b
			}
		}
	}
	return nil
}

// overlayButton finds a button in the window's topmost dialog.
func overlayButton(t *testing.T, w fyne.Window, text string) *widget.Button {
	top := w.Canvas().Overlays().Top()
	if top == nil {
		return nil
	}
	return findButton(t, top, text)
}

// browser is a viewer with a cookie jar, as a phone's browser keeps one.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	c := testenv.Client(t)
	c.Timeout = 5 * time.Second
	return &browser{t, c}
}

func (b *browser) get(url string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// newRealApp is the app over a real engine and server on a loopback port.
func newRealApp(t *testing.T) (*App, *engine.Engine, fyne.App) {
	t.Helper()
	fa := test.NewTempApp(t)
	s := engine.Defaults()
	s.Listen = "127.0.0.1:0"
	eng, err := engine.New(s, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	return New(fa, eng, fakeDevices, Options{}), eng, fa
}

// TestApproveInWindow drives the real engine and server: a viewer opens the
// link, the window asks, the presenter taps Allow, the viewer watches; then
// Disconnect in the viewer list sends it away.
func TestApproveInWindow(t *testing.T) {
	a, eng, _ := newRealApp(t)
	a.win.approve.SetChecked(true) // as the presenter ticks it
	if got := eng.Settings().Access.Approve; got != access.ApproveAsk {
		t.Fatalf("after ticking the box, approve = %q, want ask", got)
	}
	a.Start()
	srv := eng.Server()
	if srv == nil {
		t.Fatal("not sharing after Start")
	}
	base := "http://127.0.0.1:" + itoa(srv.Port())
	link := base + "/?t=" + srv.Token()

	phone := newBrowser(t)
	code, body := phone.get(link)
	if code != http.StatusForbidden || !strings.Contains(body, "Waiting for the presenter") {
		t.Fatalf("new viewer got %d %.80q, want the waiting page", code, body)
	}
	a.refresh()
	allow := overlayButton(t, a.Window(), "Allow")
	if allow == nil {
		t.Fatal("the window shows no Allow question for the waiting viewer")
	}
	if got := a.win.viewers.Objects; len(got) != 1 {
		t.Errorf("viewer list has %d rows, want 1", len(got))
	}
	test.Tap(allow)
	if code, body = phone.get(base + "/"); code != http.StatusOK || !strings.Contains(body, "viewer.js") {
		t.Fatalf("after Allow the viewer got %d %.80q, want the viewer page", code, body)
	}
	if a.win.w.Canvas().Overlays().Top() != nil {
		t.Error("the question is still shown after it was answered")
	}

	a.refresh()
	disc := findButton(t, a.win.viewers, "Disconnect")
	if disc == nil {
		t.Fatal("no Disconnect button in the viewer list")
	}
	test.Tap(disc)
	if code, body = phone.get(base + "/"); code != http.StatusForbidden || !strings.Contains(body, "disconnected you") {
		t.Fatalf("after Disconnect the viewer got %d %.80q, want the disconnected page", code, body)
	}
	if code, _ = phone.get(base + "/api/status"); code != http.StatusForbidden {
		t.Errorf("after Disconnect, /api/status gives %d, want 403", code)
	}

	// A second viewer nobody answers for is let go when the question closes: Deny.
	other := newBrowser(t)
	other.get(link)
	a.refresh()
	deny := overlayButton(t, a.Window(), "Deny")
	if deny == nil {
		t.Fatal("no question for the second viewer")
	}
	test.Tap(deny)
	if code, body = other.get(base + "/"); code != http.StatusForbidden || !strings.Contains(body, "did not let you in") {
		t.Fatalf("after Deny the viewer got %d %.80q, want the denied page", code, body)
	}
}

// TestPINField sets the PIN from the window: viewers must enter it, and it
// is not in the QR code's link.
func TestPINField(t *testing.T) {
	a, eng, fa := newRealApp(t)
	test.Type(a.win.pin, "12ab")
	if got := eng.Settings().Access.PIN; got != "" {
		t.Fatalf("an invalid PIN %q reached the engine", got)
	}
	a.win.pin.SetText("")
	test.Type(a.win.pin, "4821")
	if got := eng.Settings().Access.PIN; got != "4821" {
		t.Fatalf("PIN = %q after typing 4821", got)
	}
	a.Start()
	u := a.URL().URL
	if u == "" || strings.Contains(u, "4821") {
		t.Fatalf("QR link %q: want one, without the PIN", u)
	}
	srv := eng.Server()
	phone := newBrowser(t)
	code, body := phone.get("http://127.0.0.1:" + itoa(srv.Port()) + "/?t=" + srv.Token())
	if code != http.StatusUnauthorized || !strings.Contains(body, `action="/pin"`) {
		t.Fatalf("viewer got %d %.80q, want the PIN page", code, body)
	}
	if got := fa.Preferences().String(prefPIN); got != "4821" {
		t.Errorf("remembered PIN %q", got)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func itoa(n int) string { return strconv.Itoa(n) }

// TestControlInWindow: the toggle, Give control and Take back control in the
// viewer list, the global Stop remote control and the tray's items.
func TestControlInWindow(t *testing.T) {
	a, f, _ := newTestApp(t)
	a.Start()
	f.mu.Lock()
	f.viewers = []access.Viewer{{ID: "v1", Addr: "192.168.1.7", Browser: "Chrome on Android", State: access.ViewerAllowed, Streams: 1, Present: true}}
	f.mu.Unlock()
	a.refresh()
	if findButton(t, a.win.viewers, "Give control") != nil {
		t.Fatal("Give control offered while remote control is off")
	}
	test.Tap(a.win.control)
	if got := f.Settings().Control; got != access.ControlGrant {
		t.Fatalf("after ticking Allow remote control, control = %q", got)
	}
	give := findButton(t, a.win.viewers, "Give control")
	if give == nil {
		t.Fatal("no Give control for a watching viewer")
	}
	test.Tap(give)
	if st := f.State(); !st.Viewers[0].Control {
		t.Fatal("Give control did not reach the engine")
	}
	if findButton(t, a.win.viewers, "Take back control") == nil || !a.win.stopCtl.Visible() {
		t.Fatal("while a viewer controls, the window offers no Take back control or Stop remote control")
	}
	if !strings.Contains(menuKey(a.trayMenu(f.State())), "Stop remote control") {
		t.Error("the tray offers no Stop remote control while a viewer controls")
	}
	test.Tap(a.win.stopCtl)
	if st := f.State(); st.Viewers[0].Control || a.win.stopCtl.Visible() {
		t.Fatal("Stop remote control left the viewer in control")
	}
	test.Tap(a.win.control)
	if got := f.Settings().Control; got != access.ControlOff {
		t.Fatalf("after unticking, control = %q", got)
	}
}

// TestControlUnavailable: where input cannot be injected (Wayland), the
// window says why and the toggle is off limits.
func TestControlUnavailable(t *testing.T) {
	fa := test.NewTempApp(t)
	f := &fakeEngine{settings: engine.Defaults()}
	dev := fakeDevices
	dev.ControlAvailable = func() error { return errors.New("remote control unavailable: this is a Wayland session") }
	a := New(fa, f, dev, Options{})
	if !a.win.control.Disabled() || !strings.Contains(a.win.ctlNote.Text, "Wayland") {
		t.Fatalf("toggle disabled %v, note %q; want disabled and the reason", a.win.control.Disabled(), a.win.ctlNote.Text)
	}
	found := false
	for _, it := range a.trayMenu(f.State()).Items {
		if it.Label == "Allow remote control" {
			t.Error("the tray offers Allow remote control where control cannot work")
		}
		if strings.HasPrefix(it.Label, "Remote control: not available here") {
			found = true
			if !it.Disabled {
				t.Error("the tray's remote-control item is enabled where control cannot work")
			}
		}
	}
	if !found {
		t.Error("the tray does not say remote control is unavailable")
	}
}

// TestQuestionAtOnce: the window asks about a waiting viewer as soon as the
// viewer arrives, driven by the engine's change notices alone (the counters'
// tick is an hour here), and the viewer list follows the presenter letting it in.
func TestQuestionAtOnce(t *testing.T) {
	a, eng, _ := newRealApp(t)
	if err := eng.SetAccess(access.Access{Approve: access.ApproveAsk, MaxViewers: access.DefaultMaxViewers}); err != nil {
		t.Fatal(err)
	}
	a.Start()
	srv := eng.Server()
	ui := make(chan func(), 16) // what watch asks the UI goroutine (here: the test's) to run
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watch(t.Context(), stop, time.Hour, func(f func()) { ui <- f })
	}()
	defer func() { close(stop); <-done }()
	for len(ui) > 0 { // the notices of the start itself
		(<-ui)()
	}

	phone := newBrowser(t)
	arrived := time.Now()
	phone.get("http://127.0.0.1:" + itoa(srv.Port()) + "/?t=" + srv.Token())
	deadline := time.After(2 * time.Second)
	for overlayButton(t, a.Window(), "Allow") == nil {
		select {
		case f := <-ui:
			f()
		case <-deadline:
			t.Fatal("no Allow question within 2 s of the viewer arriving, with no tick to poll")
		}
	}
	t.Logf("question shown %v after the viewer arrived", time.Since(arrived).Round(time.Millisecond))
	test.Tap(overlayButton(t, a.Window(), "Allow"))
	for len(a.win.viewers.Objects) != 1 {
		select {
		case f := <-ui:
			f()
		case <-time.After(2 * time.Second):
			t.Fatalf("viewer list has %d rows after Allow, want 1", len(a.win.viewers.Objects))
		}
	}
}
