package access_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deskcast/deskcast/access"
)

// clock is a fake clock for Sessions; it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newSessions(t *testing.T, a access.Access) (*access.Sessions, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	ss := access.New(a, access.Options{Now: c.now})
	t.Cleanup(ss.Close)
	return ss, c
}

func create(t *testing.T, ss *access.Sessions, addr string) *access.Session {
	t.Helper()
	s, err := ss.Create(addr, uaChromeAndroid)
	if err != nil {
		t.Fatalf("Create from %s: %v", addr, err)
	}
	return s
}

func TestSessionStates(t *testing.T) {
	cases := []struct {
		name string
		acc  access.Access
		want access.ViewerState
	}{
		{"open", access.Access{}, access.ViewerAllowed},
		{"PIN", access.Access{PIN: pin}, access.ViewerNeedsPIN},
		{"approval", access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Hour}, access.ViewerWaiting},
		{"PIN and approval", access.Access{PIN: pin, Approve: access.ApproveAsk, ApproveTimeout: time.Hour}, access.ViewerNeedsPIN},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ss, _ := newSessions(t, tc.acc)
			s := create(t, ss, "192.0.2.1:1000")
			if st := s.State(); st != tc.want {
				t.Fatalf("new viewer: state %q, want %q", st, tc.want)
			}
			if ss.Lookup(s.Secret()) != s {
				t.Error("Lookup of the session's own secret does not find it")
			}
			if ss.Lookup(s.ID()) != nil || ss.Lookup("") != nil {
				t.Error("Lookup finds a session by its public ID or by nothing")
			}
		})
	}
}

// TestCheckPINLockout: LockFailures wrong PINs from one address lock it out
// for LockWindow, the right PIN included; another address is not held back.
func TestCheckPINLockout(t *testing.T) {
	ss, clk := newSessions(t, access.Access{PIN: pin})
	s := create(t, ss, "192.0.2.1:1000")
	for i := range access.LockFailures {
		err := ss.CheckPIN(s, "192.0.2.1:1000", "0000")
		want := access.ErrWrongPIN
		if i == access.LockFailures-1 {
			want = access.ErrLocked
		}
		if !errors.Is(err, want) {
			t.Fatalf("wrong PIN %d: %v, want %v", i+1, err, want)
		}
	}
	if err := ss.CheckPIN(s, "192.0.2.1:1000", pin); !errors.Is(err, access.ErrLocked) {
		t.Fatalf("right PIN while locked: %v, want ErrLocked", err)
	}
	other := create(t, ss, "192.0.2.2:1000")
	if err := ss.CheckPIN(other, "192.0.2.2:1000", pin); err != nil || !other.Is(access.ViewerAllowed) {
		t.Fatalf("right PIN from another address: %v, state %q", err, other.State())
	}
	clk.add(access.LockWindow)
	if err := ss.CheckPIN(s, "192.0.2.1:1000", pin); err != nil || !s.Is(access.ViewerAllowed) {
		t.Fatalf("right PIN once the lock lifted: %v, state %q", err, s.State())
	}
}

// TestWaitingPerAddress: with approval and no PIN, one address (an IPv6 /64
// counts as one) has only a few viewers waiting at once.
func TestWaitingPerAddress(t *testing.T) {
	ss, _ := newSessions(t, access.Access{Approve: access.ApproveAsk, ApproveTimeout: time.Hour})
	for i, addr := range []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::3]:1"} {
		if _, err := ss.Create(addr, ""); err != nil {
			t.Fatalf("waiting viewer %d: %v", i+1, err)
		}
	}
	if _, err := ss.Create("[2001:db8::4]:1", ""); !errors.Is(err, access.ErrTooManyWaiting) {
		t.Fatalf("a fourth from the same /64: %v, want ErrTooManyWaiting", err)
	}
	if _, err := ss.Create("[2001:db8:1::1]:1", ""); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// TestHoldAndPresence: open streams make a viewer present and count toward
// the limit; a viewer gone for PresentFor frees its place.
func TestHoldAndPresence(t *testing.T) {
	ss, clk := newSessions(t, access.Access{MaxViewers: 1})
	s := create(t, ss, "192.0.2.1:1000")
	var releases []func()
	for i := range access.MaxStreams {
		release, err := ss.Hold(s)
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		releases = append(releases, release)
	}
	if _, err := ss.Hold(s); !errors.Is(err, access.ErrTooManyStreams) {
		t.Fatalf("stream %d: %v, want ErrTooManyStreams", access.MaxStreams+1, err)
	}
	if vs, _ := ss.List(); len(vs) != 1 || !vs[0].Present || vs[0].Streams != access.MaxStreams {
		t.Fatalf("List() = %+v, want the one viewer present with its streams", vs)
	}
	if _, err := ss.Create("192.0.2.2:1000", ""); !errors.Is(err, access.ErrFull) {
		t.Fatalf("a second viewer on a share for one: %v, want ErrFull", err)
	}
	for _, release := range releases {
		release()
	}
	clk.add(access.PresentFor)
	if vs, _ := ss.List(); len(vs) != 0 {
		t.Fatalf("List() = %+v once the viewer is gone, want nobody", vs)
	}
	create(t, ss, "192.0.2.2:1000")
}

// TestControlGrants: control goes to one viewer at a time, never to one who
// may not watch, and leaves with a viewer sent away.
func TestControlGrants(t *testing.T) {
	ss, _ := newSessions(t, access.Access{})
	a, b := create(t, ss, "192.0.2.1:1000"), create(t, ss, "192.0.2.2:1000")
	if err := ss.Grant(a.ID()); err != nil {
		t.Fatal(err)
	}
	if err := ss.Grant(b.ID()); err != nil {
		t.Fatal(err)
	}
	if granted, _ := ss.ControlOf(a); granted || ss.Controller() != b.ID() {
		t.Fatalf("after granting b: a granted %v, controller %q", granted, ss.Controller())
	}
	if err := ss.Disconnect(b.ID()); err != nil {
		t.Fatal(err)
	}
	if granted, allowed := ss.ControlOf(b); granted || allowed || ss.Controller() != "" {
		t.Fatalf("after disconnecting b: granted %v, allowed %v, controller %q", granted, allowed, ss.Controller())
	}
	if err := ss.Grant(b.ID()); err == nil {
		t.Error("granted control to a disconnected viewer")
	}
	if err := ss.Grant("nobody"); !errors.Is(err, access.ErrNoViewer) {
		t.Errorf("Grant of an unknown ID: %v, want ErrNoViewer", err)
	}
	if err := ss.Revoke("nobody"); !errors.Is(err, access.ErrNoViewer) {
		t.Errorf("Revoke of an unknown ID: %v, want ErrNoViewer", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in           string
		video, audio bool
		ok           bool
	}{
		{"screen+audio", true, true, true},
		{"screen", true, false, true},
		{"audio", false, true, true},
		{"", false, false, false},
		{"Screen", false, false, false},
	} {
		m, err := access.ParseMode(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseMode(%q): %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err == nil && (m.Video() != tc.video || m.Audio() != tc.audio) {
			t.Errorf("%q: video %v audio %v, want %v %v", tc.in, m.Video(), m.Audio(), tc.video, tc.audio)
		}
	}
}

func TestParseControlMode(t *testing.T) {
	for in, want := range map[string]access.ControlMode{
		"": access.ControlOff, "off": access.ControlOff, "no": access.ControlOff,
		"on": access.ControlGrant, "grant": access.ControlGrant, "TRUE": access.ControlGrant,
		"all": access.ControlAll,
	} {
		if got, err := access.ParseControlMode(in); err != nil || got != want {
			t.Errorf("ParseControlMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := access.ParseControlMode("some"); err == nil {
		t.Error(`ParseControlMode("some"): no error`)
	}
}
