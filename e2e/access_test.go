package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/internal/testenv"
)

// TestPINAndDisconnectInChromium: a viewer with the link gets the PIN page,
// a wrong PIN is refused, the right one shows the screen; the presenter's
// Disconnect takes the picture away at once.
func TestPINAndDisconnectInChromium(t *testing.T) {
	x := testenv.StartX(t, 640, 480)
	x.Fill(red)
	e, base := startEngine(t, engine.Settings{FPS: 30, Quality: 80, Access: access.Access{PIN: "4821"}})
	ctx := testenv.Browser(t, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?t="+token)); err != nil {
		t.Fatal(err)
	}
	heading := func() string {
		return eval[string](t, ctx, "document.querySelector('h1') ? document.querySelector('h1').textContent : ''")
	}
	if h := heading(); h != "Enter the PIN" {
		t.Fatalf("link opens %q, want the PIN page", h)
	}
	submit := func(pin string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SendKeys(`input[name="pin"]`, pin), chromedp.Submit(`form`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the form's navigation
	}
	submit("1111")
	if alert := eval[string](t, ctx, "(document.querySelector('[role=alert]')||{}).textContent||''"); !strings.Contains(alert, "wrong PIN") {
		t.Fatalf("after a wrong PIN the page says %q", alert)
	}
	submit("4821")
	at := fit(t, ctx, 640, 480)
	waitPage(t, ctx, 10*time.Second, map[image.Point]color.RGBA{at(320, 240): red})
	if href := eval[string](t, ctx, "location.href"); strings.Contains(href, token) || strings.Contains(href, "4821") {
		t.Errorf("address bar %q holds the token or the PIN", href)
	}

	srv := e.Server()
	vs, _ := srv.Viewers()
	if len(vs) != 1 || vs[0].State != access.ViewerAllowed || vs[0].Streams == 0 || vs[0].Browser != "Headless Chrome on Linux" {
		t.Fatalf("viewer list %+v, want one Headless Chrome watching", vs)
	}
	start := time.Now()
	if err := e.Disconnect(vs[0].ID); err != nil {
		t.Fatal(err)
	}
	for heading() != "Disconnected" {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5 s after Disconnect the page shows %q", heading())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("page said Disconnected %v after the presenter's click", time.Since(start).Round(time.Millisecond))
	if st := srv.Status(); st.Viewers != 0 {
		t.Errorf("%d streams still open after Disconnect", st.Viewers)
	}
}

// headless runs the binary with args and returns its base URL and stdout lines so far.
func headless(t *testing.T, args ...string) (string, []string) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(appBinary(t), append([]string{"--headless", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token}, args...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	last := "viewer: http://127.0.0.1:" // the last URL line
	if strings.Contains(strings.Join(args, " "), "--approve") {
		last = "approve:"
	}
	var got []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("deskcast ended; printed %q", got)
			}
			got = append(got, l)
			if strings.HasPrefix(l, last) {
				go func() {
					for range lines {
					}
				}()
				return fmt.Sprintf("http://127.0.0.1:%d", port), got
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("deskcast printed only %q", got)
		}
	}
}

type phone struct {
	t *testing.T
	c *http.Client
}

func newPhone(t *testing.T) *phone {
	c := testenv.Client(t)
	c.Timeout = 5 * time.Second
	return &phone{t, c}
}

func (p *phone) do(method, url string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1")
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestHeadlessApprove: with --approve, viewers wait; the presenter lets one
// in from this computer, and one nobody answers for is denied after the
// timeout. With --approve=auto, nobody answering lets the viewer in.
func TestHeadlessApprove(t *testing.T) {
	testenv.StartX(t, 320, 240)
	base, out := headless(t, "--approve", "--approve-timeout", "2s")
	if !strings.Contains(strings.Join(out, "\n"), "/api/viewers/ID/allow?t="+token) {
		t.Errorf("stdout %q does not say how to let a viewer in", out)
	}
	link := base + "/?t=" + token

	alice := newPhone(t)
	if code, body := alice.do("GET", link); code != http.StatusForbidden || !strings.Contains(body, "Waiting for the presenter") {
		t.Fatalf("new viewer: %d %.100q, want the waiting page", code, body)
	}
	if code, _ := alice.do("GET", base+"/snapshot.jpg"); code != http.StatusForbidden {
		t.Errorf("a waiting viewer's snapshot: %d, want 403", code)
	}
	presenter := newPhone(t)
	code, body := presenter.do("GET", base+"/api/viewers?t="+token)
	var vs []access.Viewer
	if err := json.Unmarshal([]byte(body), &vs); code != http.StatusOK || err != nil || len(vs) != 1 ||
		vs[0].State != access.ViewerWaiting || vs[0].Browser != "Safari on iPhone" || vs[0].Addr != "127.0.0.1" {
		t.Fatalf("presenter's list: %d %s (%v)", code, body, err)
	}
	if code, _ := presenter.do("POST", base+"/api/viewers/"+vs[0].ID+"/allow?t="+token); code != http.StatusNoContent {
		t.Fatalf("allow: %d", code)
	}
	if code, body := alice.do("GET", base+"/"); code != http.StatusOK || !strings.Contains(body, "viewer.js") {
		t.Fatalf("after allow: %d %.100q, want the viewer page", code, body)
	}
	if code, _ := alice.do("GET", base+"/snapshot.jpg"); code != http.StatusOK {
		t.Errorf("allowed viewer's snapshot: %d", code)
	}

	bob := newPhone(t)
	bob.do("GET", link)
	time.Sleep(2500 * time.Millisecond)
	if code, body := bob.do("GET", base+"/"); code != http.StatusForbidden || !strings.Contains(body, "did not let you in") {
		t.Fatalf("unanswered viewer after the timeout: %d %.100q, want denied", code, body)
	}

	t.Run("auto", func(t *testing.T) {
		base, _ := headless(t, "--approve=auto", "--approve-timeout", "1s")
		carol := newPhone(t)
		if code, _ := carol.do("GET", base+"/?t="+token); code != http.StatusForbidden {
			t.Fatalf("new viewer: %d, want to wait", code)
		}
		time.Sleep(1500 * time.Millisecond)
		if code, _ := carol.do("GET", base+"/"); code != http.StatusOK {
			t.Fatalf("after the timeout with --approve=auto: %d, want the viewer page", code)
		}
	})
}

// TestMaxViewersFullPage: one viewer more than --max-viewers gets the full page.
func TestMaxViewersFullPage(t *testing.T) {
	testenv.StartX(t, 320, 240)
	base, _ := headless(t, "--max-viewers", "2")
	link := base + "/?t=" + token
	for i := range 2 {
		if code, _ := newPhone(t).do("GET", link); code != http.StatusOK {
			t.Fatalf("viewer %d: %d", i+1, code)
		}
	}
	code, body := newPhone(t).do("GET", link)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "This share is full") {
		t.Fatalf("third viewer: %d %.100q, want the full page", code, body)
	}
}
