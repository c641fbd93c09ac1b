package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// TestWebRTCSlowViewer is a room on real links: the real binary in a network
// namespace, three WebRTC viewers (light pion clients, in a namespace of
// their own) behind a 100 Mbit/s link and one behind a 1 Mbit/s link, which
// carries less than the busy 1080p desktop's H.264. The slow viewer keeps
// playing on fewer frames (those its link's estimate lets through: every
// other frame is droppable) rather than stalling and asking for keyframes,
// and the fast viewers neither lose frames nor receive keyframes for it.
// The bounds are loose: the test is about behaviour, the figures are make
// bench's.
func TestWebRTCSlowViewer(t *testing.T) {
	x := testenv.StartX(t, 1920, 1080)
	x.StartBusy(t, 3)
	n := testenv.NewNet(t)
	fast := n.AddViewers(t, "100mbit")
	slow := n.AddViewers(t, "1mbit")
	const port = 8080
	startHeadlessIn(t, n.Server, "--listen", fmt.Sprintf(":%d", port), "--token", token, "--fps", "30", "--max-viewers", "-1")
	whep := func(l *testenv.Link) string { return fmt.Sprintf("http://%s:%d/whep?t=%s", l.ServerIP, port, token) }
	fv := startViewers(t, "fast viewers", fast.NS, "webrtc", whep(fast))
	sv := startViewers(t, "slow viewer", slow.NS, "webrtc", whep(slow))
	fv.join(t, 3, 0)
	if ttfp := sv.join(t, 1, 0); ttfp[0] < 0 {
		t.Fatal("the slow viewer got no frame within 10 s")
	}
	time.Sleep(4 * time.Second) // the slow link's estimate settles

	const d = 8 * time.Second
	type res struct {
		cs  []clientStats
		err error
	}
	fr, sr := make(chan res, 1), make(chan res, 1)
	go func() { cs, err := fv.measure(d); fr <- res{cs, err} }()
	go func() { cs, err := sv.measure(d); sr <- res{cs, err} }()
	f, s := <-fr, <-sr
	if f.err != nil || s.err != nil {
		t.Fatal(f.err, s.err)
	}
	sl := s.cs[0]
	t.Logf("1 Mbit/s viewer: %.1f fps (slowest second %.0f), %.0f kbit/s, %d keyframes", sl.FPS, sl.WorstFPS, sl.Kbps, sl.Keyframes)
	for i, c := range f.cs {
		t.Logf("100 Mbit/s viewer %d: %.1f fps (slowest second %.0f), %.0f kbit/s, %d keyframes", i, c.FPS, c.WorstFPS, c.Kbps, c.Keyframes)
	}
	if sl.FPS < 5 {
		t.Errorf("the slow viewer played %.1f fps, want it to keep playing (≥ 5)", sl.FPS)
	}
	if sl.Keyframes > 4 {
		t.Errorf("the slow viewer got %d keyframes in %v: it should be thinned, not restarted", sl.Keyframes, d)
	}
	for i, c := range f.cs {
		if c.FPS < 20 {
			t.Errorf("fast viewer %d played %.1f fps beside the slow one, want ≥ 20", i, c.FPS)
		}
		if c.Keyframes > 4 {
			t.Errorf("fast viewer %d got %d keyframes in %v", i, c.Keyframes, d)
		}
	}
}
