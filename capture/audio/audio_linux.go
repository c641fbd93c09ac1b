package audio

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// pulsePrefix marks device IDs that name a PulseAudio (or PipeWire) source.
const pulsePrefix = "pulse:"

// pulseSources lists PulseAudio's sources through pactl.
func pulseSources() ([]Device, error) {
	out, err := exec.Command("pactl", "--format=json", "list", "sources").Output()
	if err != nil {
		return nil, err
	}
	var srcs []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		MonitorOf   string `json:"monitor_of_sink"`
	}
	if err := json.Unmarshal(out, &srcs); err != nil {
		return nil, err
	}
	def, _ := exec.Command("pactl", "get-default-source").Output()
	var ds []Device
	for _, s := range srcs {
		name := s.Description
		if name == "" {
			name = s.Name
		}
		ds = append(ds, Device{ID: pulsePrefix + s.Name, Name: name,
			Monitor: strings.HasSuffix(s.Name, ".monitor") || (s.MonitorOf != "" && s.MonitorOf != "n/a"),
			Default: strings.TrimSpace(string(def)) == s.Name})
	}
	return ds, nil
}

func pulseSourceExists(name string) (bool, error) {
	out, err := exec.Command("pactl", "list", "short", "sources").Output()
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == name {
			return true, nil
		}
	}
	return false, nil
}

var pulseEnv sync.Mutex

// withPulseSource runs f with the environment that libpulse reads when ALSA's
// pulse plugin connects a stream: PULSE_SOURCE names the source to record
// (when set), and PULSE_LATENCY_MSEC asks for 20 ms fragments. Measured
// with a null sink: a tone reaches our callback 16 ms after it is played; a
// new stream's first data comes about 2 s after it opens (Run fills that gap
// with silence).
func withPulseSource(src string, set bool, f func()) {
	pulseEnv.Lock()
	defer pulseEnv.Unlock()
	env := map[string]string{"PULSE_LATENCY_MSEC": "20"}
	if set {
		env["PULSE_SOURCE"] = src
	}
	for k, v := range env {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	f()
}

var stderrMu sync.Mutex

// quietStderr runs f with file descriptor 2 pointed at /dev/null: ALSA and
// JACK write their probing noise straight to it. Keep f short: a crash
// report written meanwhile would be lost too.
func quietStderr(f func()) {
	stderrMu.Lock()
	defer stderrMu.Unlock()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		f()
		return
	}
	defer null.Close()
	saved, err := unix.Dup(2)
	if err != nil {
		f()
		return
	}
	defer unix.Close(saved)
	_ = unix.Dup2(int(null.Fd()), 2)
	defer unix.Dup2(saved, 2)
	f()
}
