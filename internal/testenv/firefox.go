//go:build linux

package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BiDi is one headless Firefox ESR driven over WebDriver BiDi
// (https://w3c.github.io/webdriver-bidi/), which Firefox serves itself with
// --remote-debugging-port: no geckodriver. It drives the window's one tab.
type BiDi struct {
	conn   *websocket.Conn
	ctx    context.Context // ends when the browser is closed
	cancel context.CancelFunc
	tab    string // the browsing context's id
	proc   *group

	mu      sync.Mutex
	nextID  int
	pending map[int]chan bidiMessage
	errs    []string
	readErr error
	done    chan struct{} // closed when the reader has returned
}

// bidiMessage is a command's result, an error or an event.
type bidiMessage struct {
	Type    string          `json:"type"` // "success", "error" or "event"
	ID      *int            `json:"id"`
	Method  string          `json:"method"` // of an event
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// firefoxPrefs go into the fresh profile's user.js. Firefox applies its own
// recommended automation preferences when the remote agent starts
// (remote.prefs.recommended); these add what the tests need on top.
var firefoxPrefs = map[string]any{
	"browser.shell.checkDefaultBrowser":           false,
	"datareporting.policy.dataSubmissionEnabled":  false,
	"toolkit.telemetry.reportingpolicy.firstRun":  false,
	"app.update.disabledForTesting":               true,
	"browser.aboutwelcome.enabled":                false,
	"network.proxy.type":                          0,
	"media.autoplay.default":                      1, // blocked, as for a user: the page must ask for a click
	"app.normandy.enabled":                        false,
	"messaging-system.rsexperimentloader.enabled": false,
}

// Firefox starts headless Firefox ESR with a fresh profile and a w×h
// viewport; it is closed when the test ends, with every process it started.
func Firefox(t testing.TB, w, h int) *BiDi {
	t.Helper()
	Need(t, "firefox-esr")
	profile := t.TempDir()
	var js strings.Builder
	for k, v := range firefoxPrefs {
		b, _ := json.Marshal(v)
		fmt.Fprintf(&js, "user_pref(%q, %s);\n", k, b)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(js.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("firefox-esr", "--headless", "--remote-debugging-port=0",
		"--profile", profile, "--no-remote", "about:blank")
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	addr := make(chan string, 1)
	const listening = "WebDriver BiDi listening on "
	g, err := startGroup(cmd, func(l string) bool {
		if i := strings.Index(l, listening); i >= 0 {
			addr <- strings.TrimSpace(l[i+len(listening):])
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("starting firefox-esr: %v", err)
	}
	b := &BiDi{proc: g, pending: map[int]chan bidiMessage{}, done: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	t.Cleanup(b.close)
	var url string
	select {
	case url = <-addr:
	case <-g.exited:
		t.Fatalf("firefox-esr exited before serving WebDriver BiDi:\n%s", g.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("firefox-esr did not serve WebDriver BiDi within 30 s:\n%s", g.out)
	}
	dctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	b.conn, _, err = websocket.Dial(dctx, url+"/session", nil)
	if err != nil {
		t.Fatalf("connecting to Firefox's WebDriver BiDi at %s: %v", url, err)
	}
	b.conn.SetReadLimit(64 << 20) // screenshots
	go b.read()

	if err := b.call("session.new", map[string]any{"capabilities": map[string]any{}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.call("session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		t.Fatal(err)
	}
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := b.call("browsingContext.getTree", map[string]any{}, &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("finding Firefox's tab: %v (%d tabs)", err, len(tree.Contexts))
	}
	b.tab = tree.Contexts[0].Context
	if err := b.call("browsingContext.setViewport", map[string]any{"context": b.tab,
		"viewport": map[string]int{"width": w, "height": h}}, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// read hands results to their callers and keeps the console's errors.
func (b *BiDi) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.Read(b.ctx)
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m bidiMessage
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		if m.Type == "event" {
			if m.Method == "log.entryAdded" {
				var e struct {
					Level, Text, Type string
				}
				if json.Unmarshal(m.Params, &e) == nil && e.Level == "error" {
					b.mu.Lock()
					b.errs = append(b.errs, e.Text)
					b.mu.Unlock()
				}
			}
			continue
		}
		if m.ID == nil {
			continue
		}
		b.mu.Lock()
		ch := b.pending[*m.ID]
		delete(b.pending, *m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends a command and decodes its result into result (unless nil).
func (b *BiDi) call(method string, params, result any) error {
	b.mu.Lock()
	if b.readErr != nil {
		err := b.readErr
		b.mu.Unlock()
		return fmt.Errorf("%s: connection closed: %w", method, err)
	}
	b.nextID++
	id := b.nextID
	ch := make(chan bidiMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection closed", method)
		}
		if m.Type == "error" {
			return fmt.Errorf("%s: %s: %s", method, m.Error, m.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: no answer: %w", method, ctx.Err())
	}
}

// close ends the session politely (browser.close), then the processes.
func (b *BiDi) close() {
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		msg, _ := json.Marshal(map[string]any{"id": 0, "method": "browser.close", "params": map[string]any{}})
		_ = b.conn.Write(ctx, websocket.MessageText, msg)
		cancel()
	}
	b.proc.stop(5 * time.Second)
	b.cancel()
	if b.conn != nil {
		b.conn.CloseNow()
		<-b.done
	}
}

// Navigate loads url in the tab and returns once the page has loaded.
func (b *BiDi) Navigate(url string) error {
	return b.call("browsingContext.navigate", map[string]any{"context": b.tab, "url": url, "wait": "complete"}, nil)
}

// Eval evaluates the JavaScript expression expr in the page and returns its
// value as JSON (null for undefined). A thrown exception is an error.
func (b *BiDi) Eval(expr string) (json.RawMessage, error) {
	return b.eval(expr, false)
}

func (b *BiDi) eval(expr string, activate bool) (json.RawMessage, error) {
	var r struct {
		Type   string `json:"type"` // "success" or "exception"
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	// The value comes back as a BiDi RemoteValue; JSON.stringify in the page
	// makes it plain JSON instead.
	err := b.call("script.evaluate", map[string]any{
		"expression":     "JSON.stringify((" + expr + "))",
		"target":         map[string]string{"context": b.tab},
		"awaitPromise":   false,
		"userActivation": activate,
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		return nil, fmt.Errorf("evaluating %q: %s", expr, r.ExceptionDetails.Text)
	}
	if r.Result.Type != "string" {
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(r.Result.Value), nil
}

// Screenshot captures the tab's viewport.
func (b *BiDi) Screenshot() (image.Image, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := b.call("browsingContext.captureScreenshot", map[string]any{"context": b.tab}, &r); err != nil {
		return nil, err
	}
	buf, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(buf))
}

// Click clicks the middle of the first element matching the CSS selector
// with the (virtual) mouse, as a user would: a real input event, so the page
// gets a user gesture (to start sound, for one).
func (b *BiDi) Click(selector string) error {
	raw, err := b.Eval(fmt.Sprintf(`(function(){var e=document.querySelector(%q); if(!e) return null;
		e.scrollIntoView({block:'center'}); var r=e.getBoundingClientRect(); return [r.x+r.width/2, r.y+r.height/2]})()`, selector))
	if err != nil {
		return err
	}
	var at []float64
	if err := json.Unmarshal(raw, &at); err != nil || len(at) != 2 {
		return fmt.Errorf("click: no element matches %q", selector)
	}
	return b.ClickAt(int(at[0]), int(at[1]))
}

// ClickAt presses and releases the left mouse button at (x, y) in the viewport.
func (b *BiDi) ClickAt(x, y int) error {
	return b.call("input.performActions", map[string]any{"context": b.tab, "actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]string{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": x, "y": y, "duration": 0},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}}, nil)
}

// Type clicks the element matching selector and types text into it, a key
// at a time; "\uE007" is the Enter key, as in WebDriver.
func (b *BiDi) Type(selector, text string) error {
	if err := b.Click(selector); err != nil {
		return err
	}
	var keys []any
	for _, r := range text {
		keys = append(keys, map[string]any{"type": "keyDown", "value": string(r)},
			map[string]any{"type": "keyUp", "value": string(r)})
	}
	return b.call("input.performActions", map[string]any{"context": b.tab, "actions": []any{map[string]any{
		"type": "key", "id": "keyboard", "actions": keys}}}, nil)
}

// ConsoleErrors returns the errors the page has logged so far (console.error,
// uncaught exceptions), from BiDi's log.entryAdded events.
func (b *BiDi) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}
