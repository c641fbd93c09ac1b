package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
)

// TestSentAwayStaysAway: a disconnected or denied viewer is remembered for
// the whole share, however long ago, so its browser cannot come back by
// opening the link again; a viewer who simply left is forgotten.
func TestSentAwayStaysAway(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(*Server, string) error
		page string
	}{
		{"disconnected", (*Server).Disconnect, "Disconnected"},
		{"denied", (*Server).Deny, "Disconnected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, clk := itServerClock(t, access.Access{}, nil)
			h := srv.Handler()
			const addr = "192.0.2.30:1000"
			secret := itLink(t, srv, h, addr)
			vs, _ := srv.Viewers()
			if len(vs) != 1 {
				t.Fatalf("viewers %+v", vs)
			}
			if err := tc.send(srv, vs[0].ID); err != nil {
				t.Fatal(err)
			}
			clk.add(2 * time.Hour)
			itLink(t, srv, h, "192.0.2.31:1000") // a newcomer: the sessions are pruned
			for _, target := range []string{"/?t=" + itToken, "/"} {
				rec := hit(srv, h, http.MethodGet, target, addr, secret, "")
				if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), tc.page) {
					t.Errorf("%s two hours later: status %d, want 403 and the %q page", target, rec.Code, tc.page)
				}
			}
		})
	}
	t.Run("left", func(t *testing.T) {
		srv, clk := itServerClock(t, access.Access{}, nil)
		h := srv.Handler()
		secret := itLink(t, srv, h, "192.0.2.30:1000")
		clk.add(2 * time.Hour)
		itLink(t, srv, h, "192.0.2.31:1000")
		if srv.viewers.Lookup(secret) != nil {
			t.Error("a viewer away for two hours is still remembered")
		}
	})
}

// TestPINStrikesByRequestAddress: wrong PINs count against the address
// they come from, not the one where the viewer first opened the link.
func TestPINStrikesByRequestAddress(t *testing.T) {
	srv := itServer(t, access.Access{PIN: itPIN}, nil)
	h := srv.Handler()
	const home, away = "192.0.2.40:1000", "198.51.100.9:2000"
	secret := itLink(t, srv, h, home)
	for i := range access.LockFailures {
		rec := hit(srv, h, http.MethodPost, "/pin", away, secret, "pin=0000")
		want := http.StatusUnauthorized
		if i == access.LockFailures-1 {
			want = http.StatusTooManyRequests
		}
		if rec.Code != want {
			t.Fatalf("guess %d from %s: status %d, want %d", i+1, away, rec.Code, want)
		}
	}
	if rec := hit(srv, h, http.MethodPost, "/pin", away, secret, "pin="+itPIN); rec.Code != http.StatusTooManyRequests {
		t.Errorf("right PIN from the locked address: status %d, want 429", rec.Code)
	}
	if rec := hit(srv, h, http.MethodPost, "/pin", home, secret, "pin="+itPIN); rec.Code != http.StatusSeeOther {
		t.Errorf("right PIN from the first address: status %d, want 303", rec.Code)
	}
}
