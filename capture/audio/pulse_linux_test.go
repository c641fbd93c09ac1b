package audio

import (
	"fmt"
	"testing"
	"time"
)

func TestPulseAddrsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"unix:/run/user/1000/pulse/native", "[[unix /run/user/1000/pulse/native]]"},
		{"/tmp/pulse.sock", "[[unix /tmp/pulse.sock]]"},
		{"{myhost}unix:/tmp/p tcp:10.0.0.2", "[[unix /tmp/p] [tcp 10.0.0.2:4713]]"},
		{"tcp4:box:4714 tcp6:[::1]", "[[tcp4 box:4714] [tcp6 [::1]:4713]]"},
		{"soundbox", "[[tcp soundbox:4713]]"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("PULSE_SERVER", tc.env)
			if got := fmt.Sprint(pulseAddrs()); got != tc.want {
				t.Errorf("PULSE_SERVER=%q: %s, want %s", tc.env, got, tc.want)
			}
		})
	}
}

// The pacer counts chunks from the newest one seen to arrive (a read that
// waited for its data), so a late read does not push the next ones later,
// and waits for the data itself every paceResync chunks.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	var p pacer
	c := &pulseConn{}
	step := func(after time.Time, slept bool) time.Time {
		c.after, c.slept = after, slept
		p.chunk(c)
		return p.next
	}
	for _, tc := range []struct {
		name  string
		after time.Time
		slept bool
		want  time.Time
	}{
		{"first chunk", ms(0), true, ms(10.3)},
		{"read on time", ms(10.4), false, ms(20.3)},
		{"read late", ms(22), false, ms(30.3)},
		{"data came after the wait", ms(31), true, ms(41.3)},
	} {
		if got := step(tc.after, tc.slept); !got.Equal(tc.want) {
			t.Errorf("%s: next read at %v, want %v", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
	for i := 2; i <= paceResync; i++ {
		step(ms(31+float64(i-1)*10), false)
	}
	if !p.next.IsZero() {
		t.Errorf("after %d chunks: next read at %v, want at once, to see the data arrive", paceResync, p.next.Sub(t0))
	}
	if got := step(ms(2000), true); !got.Equal(ms(2010.3)) {
		t.Errorf("after the resync: next read at %v, want 2010.3ms", got.Sub(t0))
	}
}
