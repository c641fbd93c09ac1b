package testenv

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Sink is a PulseAudio null sink of the test's own; its monitor is a source
// that records whatever is played into it.
type Sink struct {
	Name   string
	module string
	t      testing.TB
}

// Monitor is the name of the sink's monitor source.
func (s *Sink) Monitor() string { return s.Name + ".monitor" }

// NewSink loads a null sink (PulseAudio must be running: make test starts it)
// and unloads it when the test ends.
func NewSink(t testing.TB) *Sink {
	t.Helper()
	Need(t, "pactl", "pacat")
	if out, err := exec.Command("pactl", "info").CombinedOutput(); err != nil {
		t.Fatalf("PulseAudio is not running (make test starts it): %v\n%s", err, out)
	}
	name := fmt.Sprintf("dc_test_%d", rand.IntN(1_000_000))
	out, err := exec.Command("pactl", "load-module", "module-null-sink", "sink_name="+name,
		"sink_properties=device.description="+name).Output()
	if err != nil {
		t.Fatalf("loading a null sink: %v", err)
	}
	s := &Sink{Name: name, module: strings.TrimSpace(string(out)), t: t}
	t.Cleanup(func() { s.Unload() })
	return s
}

// Unload removes the sink, as unplugging a device would.
func (s *Sink) Unload() {
	if s.module != "" {
		_ = exec.Command("pactl", "unload-module", s.module).Run()
		s.module = ""
	}
}

// Reload loads the sink again under the same name, as plugging it back in.
func (s *Sink) Reload() {
	out, err := exec.Command("pactl", "load-module", "module-null-sink", "sink_name="+s.Name,
		"sink_properties=device.description="+s.Name).Output()
	if err != nil {
		s.t.Fatalf("reloading the null sink: %v", err)
	}
	s.module = strings.TrimSpace(string(out))
}

// Tone is 48 kHz stereo s16le: freq Hz at amplitude amp (0..1) for d.
func Tone(freq, amp float64, d time.Duration) []byte {
	n := int(48000 * d.Seconds())
	b := make([]byte, n*4)
	for i := range n {
		v := int16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/48000))
		binary.LittleEndian.PutUint16(b[i*4:], uint16(v))
		binary.LittleEndian.PutUint16(b[i*4+2:], uint16(v))
	}
	return b
}

// Play plays 48 kHz stereo s16le pcm into the sink and returns at once; the
// returned function stops it early (it is also stopped when the test ends).
// The player asks for 10 ms of latency.
func (s *Sink) Play(pcm []byte) (stop func()) { return s.PlayWith(pcm, 10*time.Millisecond) }

// PlayWith is Play with the player asking for the given latency: the sink
// then runs in blocks of a fraction of it, which is how often a recorder of
// its monitor gets data (a browser asks for a few tens of milliseconds).
func (s *Sink) PlayWith(pcm []byte, latency time.Duration) (stop func()) {
	cmd := exec.Command("pacat", "--playback", "--device="+s.Name, "--format=s16le", "--rate=48000",
		"--channels=2", fmt.Sprintf("--latency-msec=%d", latency.Milliseconds()), "--raw")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("pacat: %v", err)
	}
	go func() { _, _ = in.Write(pcm); in.Close() }()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	s.t.Cleanup(stop)
	return stop
}

// Goertzel returns the amplitude (0..1 of full scale) of freq in mono samples at rate.
func Goertzel(samples []float64, rate, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	k := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = x+k*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - k*s1*s2
	return 2 * math.Sqrt(max(p, 0)) / float64(len(samples))
}

// Mono converts interleaved s16 samples to mono floats in -1..1.
func Mono(pcm []int16, channels int) []float64 {
	out := make([]float64, len(pcm)/channels)
	for i := range out {
		var sum float64
		for c := range channels {
			sum += float64(pcm[i*channels+c])
		}
		out[i] = sum / float64(channels) / 32768
	}
	return out
}
