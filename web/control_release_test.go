package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/web"
)

// releases reports how often the recorder was told to let go of everything.
func (r *recorder) releases() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// controlServer is a test server with control in mode, injecting into a recorder.
func controlServer(t *testing.T, mode access.ControlMode) (*testServer, *recorder) {
	t.Helper()
	ts := startServer(t, web.Config{}, newFeed())
	rec := &recorder{}
	if err := ts.srv.SetControl(mode, rec); err != nil {
		t.Fatal(err)
	}
	return ts, rec
}

// socket opens a control socket with cookie and reads the server's first word.
func socket(t *testing.T, ts *testServer, cookie *http.Cookie) *controlConn {
	t.Helper()
	cc, err := dialControl(t, ts, cookie)
	if err != nil {
		t.Fatal(err)
	}
	cc.granted()
	return cc
}

// TestControlLetsGo: whatever a viewer holds is let go of when control
// moves to another viewer, when the viewer leaves, and never by a viewer
// who holds nothing; releases pass the rate limit.
func TestControlLetsGo(t *testing.T) {
	down := `{"t":"down","b":2,"x":0.5,"y":0.5}`
	shift := `{"t":"key","k":"Shift","down":true}`

	t.Run("grant moves to another viewer", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlGrant)
		alice, bob := ts.sessionCookie(t), ts.sessionCookie(t)
		ac := socket(t, ts, alice)
		socket(t, ts, bob) // an open socket makes Bob present
		vs, _ := ts.srv.Viewers()
		if len(vs) != 2 {
			t.Fatalf("viewers %+v, want 2", vs)
		}
		// The viewer list is oldest first: Alice, then Bob.
		if err := ts.srv.Grant(vs[0].ID); err != nil {
			t.Fatal(err)
		}
		if !ac.granted() {
			t.Fatal("Alice was not told of her grant")
		}
		ac.send(down)
		testenv.Eventually(t, "Alice's press", func() bool { return rec.count() >= 2 })
		rec.take()
		before := rec.releases()
		if err := ts.srv.Grant(vs[0].ID); err != nil { // granting again to the same one changes nothing
			t.Fatal(err)
		}
		if rec.releases() != before {
			t.Error("granting control again to the one who has it let go of its button")
		}
		if err := ts.srv.Grant(vs[1].ID); err != nil {
			t.Fatal(err)
		}
		if rec.releases() != before+1 {
			t.Errorf("control moved from Alice to Bob: %d releases, want %d", rec.releases(), before+1)
		}
	})

	t.Run("a leaving viewer lets go of what it holds, and only that", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlAll)
		holder := socket(t, ts, ts.sessionCookie(t))
		idle := socket(t, ts, ts.sessionCookie(t))
		holder.send(down, shift)
		testenv.Eventually(t, "the press and Shift", func() bool { return rec.count() == 3 })
		rec.take()
		before := rec.releases()

		_ = idle.c.CloseNow() // holds nothing: lets go of nothing
		time.Sleep(300 * time.Millisecond)
		if got := rec.take(); len(got) != 0 || rec.releases() != before {
			t.Fatalf("a viewer holding nothing left: desktop got %q, %d releases", got, rec.releases()-before)
		}

		_ = holder.c.CloseNow()
		testenv.Eventually(t, "the release", func() bool { return rec.count() == 2 })
		got := rec.take()
		want := map[string]bool{"button 2 false": true, `key "Shift" false`: true}
		for _, e := range got {
			if !want[e] {
				t.Errorf("leaving: desktop got %q, want only %q", got, []string{"button 2 false", `key "Shift" false`})
				break
			}
		}
		if rec.releases() != before {
			t.Error("one viewer leaving let go of everyone's input")
		}
	})

	t.Run("after a revoke, leaving sends nothing more", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlGrant)
		cc := socket(t, ts, ts.sessionCookie(t))
		vs, _ := ts.srv.Viewers()
		if err := ts.srv.Grant(vs[0].ID); err != nil {
			t.Fatal(err)
		}
		cc.granted()
		cc.send(down)
		testenv.Eventually(t, "the press", func() bool { return rec.count() == 2 })
		rec.take()
		ts.srv.Revoke(vs[0].ID) // lets go of everything itself
		_ = cc.c.CloseNow()
		time.Sleep(300 * time.Millisecond)
		if got := rec.take(); len(got) != 0 {
			t.Errorf("after revoke, leaving sent %q", got)
		}
	})

	t.Run("releases pass the rate limit", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlAll)
		cc := socket(t, ts, ts.sessionCookie(t))
		cc.send(down)
		for range 1200 {
			cc.send(`{"t":"move","x":0.5,"y":0.5}`)
		}
		cc.send(`{"t":"up","b":2,"x":0.5,"y":0.5}`, `{"t":"key","k":"Shift"}`)
		testenv.Eventually(t, "the release", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return strings.Contains(strings.Join(rec.events, "|"), `key "Shift" false`)
		})
		got := strings.Join(rec.take(), "|")
		if !strings.Contains(got, "button 2 false") {
			t.Error("the button's release was dropped with the flood")
		}
		if ts.srv.Status().Control.Limited == 0 {
			t.Error("1200 moves at once: nothing limited")
		}
	})

	t.Run("the rate is per viewer, not per socket", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlAll)
		cookie := ts.sessionCookie(t)
		var socks []*controlConn
		for range 4 {
			cc, err := dialControl(t, ts, cookie)
			if err != nil {
				t.Fatal(err)
			}
			cc.granted()
			socks = append(socks, cc)
		}
		start := time.Now()
		for range 300 {
			for _, cc := range socks {
				cc.send(`{"t":"move","x":0.5,"y":0.5}`)
			}
		}
		testenv.Eventually(t, "every move handled", func() bool {
			st := ts.srv.Status().Control
			return st.Events+st.Limited >= 1200
		})
		// 500 at once, then 250 a second while the test sent.
		limit := 500 + int(time.Since(start).Seconds()*250) + 10
		if got := len(rec.take()); got > limit {
			t.Errorf("4 sockets of one viewer injected %d moves in %v, want at most %d", got, time.Since(start), limit)
		}
	})

	t.Run("revoking another viewer leaves the controller's drag alone", func(t *testing.T) {
		ts, rec := controlServer(t, access.ControlGrant)
		alice, bob := ts.sessionCookie(t), ts.sessionCookie(t)
		socket(t, ts, alice)
		socket(t, ts, bob)
		vs, _ := ts.srv.Viewers()
		if err := ts.srv.Grant(vs[0].ID); err != nil {
			t.Fatal(err)
		}
		before := rec.releases()
		ts.srv.Revoke(vs[1].ID)
		if rec.releases() != before {
			t.Error("revoking a viewer without control let go of the controller's input")
		}
		ts.srv.Revoke(vs[0].ID)
		if rec.releases() != before+1 {
			t.Error("revoking the controller let go of nothing")
		}
	})

	t.Run("sending the controller away lets go and ends its grant", func(t *testing.T) {
		for name, send := range map[string]func(*web.Server, string) error{
			"disconnect": (*web.Server).Disconnect,
			"deny":       (*web.Server).Deny,
		} {
			t.Run(name, func(t *testing.T) {
				ts, rec := controlServer(t, access.ControlGrant)
				socket(t, ts, ts.sessionCookie(t))
				vs, _ := ts.srv.Viewers()
				if err := ts.srv.Grant(vs[0].ID); err != nil {
					t.Fatal(err)
				}
				before := rec.releases()
				if err := send(ts.srv, vs[0].ID); err != nil {
					t.Fatal(err)
				}
				if rec.releases() != before+1 {
					t.Errorf("%s of the controller: %d releases, want 1", name, rec.releases()-before)
				}
				// Let back in, it must be granted again to control.
				if err := ts.srv.Allow(vs[0].ID); err != nil {
					t.Fatal(err)
				}
				if st := ts.srv.Status().Control; st.Controller != "" {
					t.Errorf("after %s and allow, %s controls without a new grant", name, st.Controller)
				}
			})
		}
	})
}
