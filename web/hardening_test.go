package web_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// TestUnsentBodyDropped: a client that announces a body and never sends it
// gets its answer and then loses the connection once BodyTimeout passes;
// it cannot hold a connection (and its goroutine) for ever.
func TestUnsentBodyDropped(t *testing.T) {
	ts := startServer(t, web.Config{BodyTimeout: 300 * time.Millisecond}, newFeed())
	for _, req := range []string{
		"POST /pin HTTP/1.1\r\nHost: x\r\nContent-Type: " + formType + "\r\nContent-Length: 1000\r\n\r\n",
		"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"POST /api/viewers/00000000/allow?t=" + token + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /api/status?t=" + token + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
	} {
		t.Run(strings.Fields(req)[1], func(t *testing.T) {
			c, err := net.Dial("tcp", ts.srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(testenv.Patience))
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			br := bufio.NewReader(c)
			if resp, err := http.ReadResponse(br, nil); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
			}
			// Then the connection must end, not wait for the body.
			_, err = io.Copy(io.Discard, br)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the connection was still open after %v", time.Since(start))
			}
			t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
		})
	}
	// And the server goes on serving.
	if st, _ := getStatus(t, ts, ""); st.State == "" {
		t.Error("no status after the unsent bodies")
	}
}

// TestPresenterStatusWithAccess: with a PIN or approval on, the presenter's
// own status request (this computer, the token) is answered, lists the
// viewers, and neither makes a viewer nor asks the presenter about itself.
func TestPresenterStatusWithAccess(t *testing.T) {
	for name, acc := range map[string]access.Access{
		"PIN":      {PIN: pin},
		"approval": {Approve: access.ApproveAsk, ApproveTimeout: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			onWaiting, calls := waitRecorder()
			ts, _, _ := pinServer(t, acc, onWaiting)
			newBrowser(t, ts, uaChromeAndroid).get(t, "/?t="+token) // one viewer, waiting or at the PIN page
			if acc.Approve != access.ApproveOff {
				nextWaiting(t, calls)
			}
			for range 3 {
				b := newBrowser(t, ts, "curl/8.5.0")
				resp, body := b.get(t, "/api/status?t="+token)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("presenter status: %d %q, want 200", resp.StatusCode, body)
				}
				var st web.Status
				if err := json.Unmarshal(body, &st); err != nil {
					t.Fatal(err)
				}
				if len(st.ViewerList) != 1 || st.ViewerList[0].Browser != "Chrome on Android" {
					t.Errorf("viewer_list %+v, want the one phone", st.ViewerList)
				}
				if b.cookie() != nil {
					t.Error("the presenter's status request made it a viewer (cookie set)")
				}
			}
			testenv.NothingOn(t, calls, "OnWaiting calls for the presenter's own requests")
			if vs, _ := ts.srv.Viewers(); len(vs) != 1 {
				t.Errorf("Viewers() = %+v, want the one phone", vs)
			}
			// From another computer the token alone still meets the PIN or the wait.
			hc := newHandlerClient(ts)
			if rec := hc.do(t, http.MethodGet, "/api/status?t="+token, "192.0.2.5:1000", "", ""); rec.Code == http.StatusOK {
				t.Errorf("status from another computer with the token: 200, want the PIN or the wait")
			}
		})
	}
}

// TestWaitingPerAddress: approval asks about at most three new viewers of
// one address at a time; more get 429, and other addresses are not held back.
func TestWaitingPerAddress(t *testing.T) {
	onWaiting, calls := waitRecorder()
	ts, _, _ := pinServer(t, access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Minute}, onWaiting)
	hc := newHandlerClient(ts)
	for i := range 3 {
		if rec := hc.do(t, http.MethodGet, "/?t="+token, "192.0.2.7:1000", "", ""); rec.Code != http.StatusForbidden {
			t.Fatalf("viewer %d: status %d, want 403 and the waiting page", i+1, rec.Code)
		}
		nextWaiting(t, calls)
	}
	for i := range 20 {
		rec := hc.do(t, http.MethodGet, "/?t="+token, "192.0.2.7:1000", "", "")
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("flood request %d: status %d, want 429", i+1, rec.Code)
		}
	}
	testenv.NothingOn(t, calls, "OnWaiting calls for the flood")
	// An IPv6 /64 is one address: a device picks any address in it.
	for i := range 5 {
		rec := hc.do(t, http.MethodGet, "/?t="+token, fmt.Sprintf("[2001:db8:1:2::%x]:1000", i+1), "", "")
		want := http.StatusForbidden
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		if rec.Code != want {
			t.Fatalf("IPv6 viewer %d of one /64: status %d, want %d", i+1, rec.Code, want)
		}
		if want == http.StatusForbidden {
			nextWaiting(t, calls)
		}
	}
	if rec := hc.do(t, http.MethodGet, "/?t="+token, "192.0.2.8:1000", "", ""); rec.Code != http.StatusForbidden {
		t.Errorf("another address: status %d, want 403 and the waiting page", rec.Code)
	}
	nextWaiting(t, calls)
	if vs, _ := ts.srv.Viewers(); len(vs) != 7 {
		t.Errorf("%d viewers waiting, want 7", len(vs))
	}
}

// TestPresenterActionsNeedTheToken: from this computer an allowed viewer's
// cookie may read the viewer list, but acting on viewers needs the token:
// a page on another local port would send the cookie along.
func TestPresenterActionsNeedTheToken(t *testing.T) {
	ts, _, _ := pinServer(t, access.Access{}, nil)
	b := newBrowser(t, ts, uaFirefoxWindows)
	b.get(t, "/?t="+token)
	vs, _ := ts.srv.Viewers()
	if len(vs) != 1 {
		t.Fatalf("viewers %+v", vs)
	}
	if resp, _ := b.get(t, "/api/viewers"); resp.StatusCode != http.StatusOK {
		t.Errorf("list with the cookie: status %d, want 200", resp.StatusCode)
	}
	for _, action := range []string{"disconnect", "deny", "control", "revoke"} {
		resp, _ := b.fetch(t, http.MethodPost, "/api/viewers/"+vs[0].ID+"/"+action, "", nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with the cookie only: status %d, want 403", action, resp.StatusCode)
		}
	}
	if vs, _ := ts.srv.Viewers(); vs[0].State != access.ViewerAllowed {
		t.Errorf("viewer is %s after refused actions, want allowed", vs[0].State)
	}
	// With the token: a grant while control is off is a conflict; with it
	// on, an unknown viewer is not found.
	grant := func(id string, want int) {
		t.Helper()
		resp := ts.do(t, timeout(t), http.MethodPost, "/api/viewers/"+id+"/control?t="+token)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("control for %s: status %d, want %d", id, resp.StatusCode, want)
		}
	}
	grant(vs[0].ID, http.StatusConflict)
	if err := ts.srv.SetControl(access.ControlGrant, &recorder{}); err != nil {
		t.Fatal(err)
	}
	grant("00000000", http.StatusNotFound)
	if resp := ts.do(t, timeout(t), http.MethodPost, "/api/viewers/00000000/revoke?t="+token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke for an unknown viewer: status %d, want 404", resp.StatusCode)
	}
	grant(vs[0].ID, http.StatusNoContent)
}
