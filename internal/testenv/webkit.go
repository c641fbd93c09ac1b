//go:build linux

package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// WebDriver is one WebKitGTK MiniBrowser driven by WebKitWebDriver over
// classic WebDriver (https://www.w3.org/TR/webdriver2/), on an Xvfb of its
// own: MiniBrowser has no headless mode.
type WebDriver struct {
	session string // http://127.0.0.1:PORT/session/ID
	client  *http.Client
	proc    *group
}

// MiniBrowser is where Debian's libwebkit2gtk-4.1-0 installs WebKitGTK's
// test browser (webkit2gtk-driver depends on it).
func MiniBrowser() string {
	m, _ := filepath.Glob("/usr/lib/*-linux-gnu/webkit2gtk-4.*/MiniBrowser")
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

// consoleHook records the page's errors in window.__dcErrors. Classic
// WebDriver has no console log and no way to run a script before a page's
// own, so every command that runs script installs it in the current
// document (a form's answer is a new one) if it is not there yet: errors
// before the test's first look at a document are missed (the tests check
// the page's state for those).
const consoleHook = `if (!window.__dcErrors) { window.__dcErrors = [];
  var ce = console.error; console.error = function () { window.__dcErrors.push(Array.prototype.join.call(arguments, ' ')); return ce.apply(console, arguments); };
  window.addEventListener('error', function (e) { window.__dcErrors.push(String(e.message || e)); });
  window.addEventListener('unhandledrejection', function (e) { window.__dcErrors.push('unhandled rejection: ' + e.reason); }); }`

// WebKit starts MiniBrowser under WebKitWebDriver on a private Xvfb, with
// a window of w×h; it is closed when the test ends, with every process it
// started. The test's DISPLAY is left alone.
func WebKit(t testing.TB, w, h int) *WebDriver {
	t.Helper()
	Need(t, "WebKitWebDriver")
	mb := MiniBrowser()
	if mb == "" {
		t.Fatal("MiniBrowser not found: run `make test` (it installs webkit2gtk-driver) or scripts/deps.sh test")
	}
	x := startX(t, "", w, h, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("WebKitWebDriver", "--port="+strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "DISPLAY="+x.Display, "WAYLAND_DISPLAY=",
		"LIBGL_ALWAYS_SOFTWARE=1", // Xvfb has no GPU
		"WEBKIT_DISABLE_DMABUF_RENDERER=1")
	g, err := startGroup(cmd, nil)
	if err != nil {
		t.Fatalf("starting WebKitWebDriver: %v", err)
	}
	d := &WebDriver{client: &http.Client{Timeout: 30 * time.Second}, proc: g}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(func() {
		if d.session != "" {
			req, _ := http.NewRequest(http.MethodDelete, d.session, nil)
			if resp, err := d.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		d.client.CloseIdleConnections()
		// The driver is a server that never exits by itself; DELETE has closed MiniBrowser.
		g.stop(0)
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := d.do(http.MethodGet, base+"/status", nil, &st); err == nil && st.Ready {
			break
		}
		select {
		case <-g.exited:
			t.Fatalf("WebKitWebDriver exited:\n%s", g.out)
		default:
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("WebKitWebDriver not ready within 10 s:\n%s", g.out)
		}
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"webkitgtk:browserOptions": map[string]any{"binary": mb, "args": []string{"--automation"}},
	}}}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.do(http.MethodPost, base+"/session", caps, &s); err != nil {
		t.Fatalf("starting MiniBrowser: %v\n%s", err, g.out)
	}
	d.session = base + "/session/" + s.SessionID
	if err := d.do(http.MethodPost, d.session+"/window/rect", map[string]int{"x": 0, "y": 0, "width": w, "height": h}, nil); err != nil {
		t.Fatalf("sizing MiniBrowser's window: %v", err)
	}
	return d
}

// do sends a WebDriver command with body (unless nil) as JSON and decodes
// the answer's value into value (unless nil).
func (d *WebDriver) do(method, url string, body, value any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s %s: %s: %w", method, url, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		_ = json.Unmarshal(out.Value, &e)
		return fmt.Errorf("%s %s: %s: %s", method, url, e.Error, e.Message)
	}
	if value != nil {
		return json.Unmarshal(out.Value, value)
	}
	return nil
}

// Navigate loads url and returns once the page has loaded.
func (d *WebDriver) Navigate(url string) error {
	if err := d.do(http.MethodPost, d.session+"/url", map[string]string{"url": url}, nil); err != nil {
		return err
	}
	_, err := d.Eval("null") // hooks the console
	return err
}

// Eval evaluates the JavaScript expression expr in the page and returns its
// value as JSON (null for undefined). A thrown exception is an error.
func (d *WebDriver) Eval(expr string) (json.RawMessage, error) {
	var s *string
	err := d.do(http.MethodPost, d.session+"/execute/sync", map[string]any{
		"script": consoleHook + "\nreturn JSON.stringify((" + expr + "))", "args": []any{}}, &s)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(*s), nil
}

// Screenshot captures the page's viewport.
func (d *WebDriver) Screenshot() (image.Image, error) {
	var s string
	if err := d.do(http.MethodGet, d.session+"/screenshot", nil, &s); err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(b))
}

func (d *WebDriver) element(selector string) (string, error) {
	var el map[string]string
	if err := d.do(http.MethodPost, d.session+"/element", map[string]string{"using": "css selector", "value": selector}, &el); err != nil {
		return "", err
	}
	for _, id := range el { // the key is the web element identifier
		return id, nil
	}
	return "", fmt.Errorf("no element matches %q", selector)
}

// Click clicks the element matching the CSS selector, as a user would.
func (d *WebDriver) Click(selector string) error {
	id, err := d.element(selector)
	if err != nil {
		return err
	}
	return d.do(http.MethodPost, d.session+"/element/"+id+"/click", map[string]any{}, nil)
}

// ClickAt presses and releases the left mouse button at (x, y) in the viewport.
func (d *WebDriver) ClickAt(x, y int) error {
	return d.do(http.MethodPost, d.session+"/actions", map[string]any{"actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]string{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": x, "y": y, "origin": "viewport", "duration": 0},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}}, nil)
}

// Type types text into the element matching selector; "\uE007" is Enter.
func (d *WebDriver) Type(selector, text string) error {
	id, err := d.element(selector)
	if err != nil {
		return err
	}
	return d.do(http.MethodPost, d.session+"/element/"+id+"/value", map[string]string{"text": text}, nil)
}

// ConsoleErrors returns what the page has logged as errors since Navigate
// hooked it (see consoleHook).
func (d *WebDriver) ConsoleErrors() []string {
	raw, err := d.Eval("window.__dcErrors || []")
	if err != nil {
		return []string{"reading the page's errors: " + err.Error()}
	}
	var errs []string
	_ = json.Unmarshal(raw, &errs)
	return errs
}
