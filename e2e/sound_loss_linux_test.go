package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
)

// listenerEnv, when set, makes the test binary a sound listener in a
// network namespace of its own (see soundListener); its value is the WHEP URL.
const listenerEnv = "DESKCAST_SOUND_LISTENER"

func init() {
	if url := os.Getenv(listenerEnv); url != "" {
		os.Exit(soundListener(url))
	}
}

// listenerSecond is what the listener heard in one second: Opus packets by
// the mode their TOC byte names (RFC 6716 §3.1: configurations 12–15 are
// hybrid, whose SILK layer carries the in-band FEC; 16–31 are CELT only).
type listenerSecond struct {
	Packets int `json:"packets"`
	Hybrid  int `json:"hybrid"`
	CELT    int `json:"celt"`
}

// soundListener receives the sound alone, as a light pion client whose
// receiver reports say what it lost, and prints a listenerSecond as JSON
// each second until killed.
func soundListener(url string) int {
	c, err := whepclient.Connect(context.Background(), url, whepclient.Options{Audio: true, NoVideo: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "listener:", err)
		return 1
	}
	defer c.Close()
	enc := json.NewEncoder(os.Stdout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var s listenerSecond
	for {
		select {
		case p := <-c.Audio:
			if len(p.Data) == 0 {
				continue
			}
			s.Packets++
			switch cfg := p.Data[0] >> 3; {
			case cfg >= 16:
				s.CELT++
			case cfg >= 12:
				s.Hybrid++
			}
		case <-tick.C:
			if enc.Encode(s) != nil {
				return 1
			}
			s = listenerSecond{}
		case <-c.Done():
			return 1
		}
	}
}

// lossRules drops a fifth of the UDP packets the server's namespace sends,
// at random: real loss on the way to the listener (this kernel has no netem).
const lossRules = `counter lost {}
chain output {
	type filter hook output priority filter; policy accept;
	meta l4proto udp numgen random mod 100 < 20 counter name lost drop
}`

// TestSoundFECUnderLoss: the real binary shares a steady tone in a network
// namespace; a listener in another hears it over WebRTC. On a clean link the
// sound is coded in Opus's CELT mode; once nftables drops a fifth of what
// the server sends, the listener's receiver reports say so and the encoder
// moves to the hybrid mode with in-band FEC within a few seconds; when the
// loss ends it goes back.
func TestSoundFECUnderLoss(t *testing.T) {
	x := testenv.StartX(t, 320, 240)
	x.Fill(black)
	sink := testenv.NewSink(t)
	sink.Play(testenv.Tone(440, 0.3, 3*time.Minute))
	n := testenv.NewNet(t)
	fw := testenv.NewFirewall(t, n.Server, "deskcast_loss")
	v := n.AddViewers(t, "")
	const port = 8080
	startHeadlessIn(t, n.Server, "--listen", fmt.Sprintf(":%d", port), "--token", token, "--audio", sink.Name)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := testenv.Command(v.NS, exe)
	cmd.Env = append(os.Environ(), listenerEnv+"="+fmt.Sprintf("http://%s:%d/whep?t=%s", v.ServerIP, port, token))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatalf("starting the listener: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	seconds := make(chan listenerSecond, 256)
	go func() {
		defer close(seconds)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s listenerSecond
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				seconds <- s
			}
		}
	}()
	// await waits, at most within, for a second in which most packets came
	// (the loss leaves 80) and nearly all were of one mode.
	await := func(what string, within time.Duration, mode func(listenerSecond) int) {
		t.Helper()
		deadline := time.After(within)
		var seen []listenerSecond
		for {
			select {
			case s, ok := <-seconds:
				if !ok {
					t.Fatalf("%s: the listener ended; it heard %+v", what, seen)
				}
				seen = append(seen, s)
				if s.Packets >= 60 && mode(s) >= s.Packets*9/10 {
					t.Logf("%s after %d s: %+v", what, len(seen), s)
					return
				}
			case <-deadline:
				t.Fatalf("%s: not within %v; each second: %+v", what, within, seen)
			}
		}
	}
	celt := func(s listenerSecond) int { return s.CELT }
	hybrid := func(s listenerSecond) int { return s.Hybrid }

	await("CELT on a clean link", 15*time.Second, celt)
	fw.Load(t, lossRules)
	await("hybrid with FEC under 20% loss", 15*time.Second, hybrid)
	t.Logf("nftables dropped %d packets", fw.Packets(t, "lost"))
	fw.Load(t, "")
	await("CELT again once the loss ends", 30*time.Second, celt)
}
