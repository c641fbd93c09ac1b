// Package audio records a sound input (a microphone or a loopback of what the
// computer plays) through portaudio, and lists the inputs there are.
package audio

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gordonklaus/portaudio"

	"github.com/deskcast/deskcast/media"
)

// Device is one input that can be shared: a microphone or a loopback
// ("Monitor of …", "Stereo Mix", BlackHole).
type Device struct {
	ID      string `json:"id"`   // what --audio and the settings store
	Name    string `json:"name"` // what menus show
	Monitor bool   `json:"monitor"`
	Default bool   `json:"default"`
}

// None is the --audio value that shares no sound.
const None = "none"

var (
	paOnce sync.Once
	paErr  error
)

// initPortaudio initialises portaudio once for the process. ALSA and JACK print
// pages of probing noise to stderr while it enumerates devices.
func initPortaudio() error {
	paOnce.Do(func() {
		quietStderr(func() { paErr = portaudio.Initialize() })
		if paErr != nil {
			paErr = fmt.Errorf("initialising audio: %w", paErr)
		}
	})
	return paErr
}

// Devices lists the input devices. On Linux with PulseAudio or PipeWire,
// each source (microphones and "Monitor of" loopbacks) is listed by name.
func Devices() ([]Device, error) {
	if err := initPortaudio(); err != nil {
		return nil, err
	}
	var out []Device
	def, _ := portaudio.DefaultInputDevice()
	out = append(out, Device{ID: "default", Name: "Default input", Default: true})
	if srcs, err := pulseSources(); err == nil {
		out = append(out, srcs...)
	}
	ds, err := portaudio.Devices()
	if err != nil {
		return nil, fmt.Errorf("listing audio devices: %w", err)
	}
	for _, d := range ds {
		if d.MaxInputChannels == 0 || d.Name == "default" || (d.Name == "pulse" && len(out) > 1) {
			continue
		}
		name := d.Name
		lower := strings.ToLower(name)
		out = append(out, Device{ID: name, Name: name, Default: def != nil && def.Index == d.Index,
			Monitor: strings.Contains(lower, "stereo mix") || strings.Contains(lower, "loopback") ||
				strings.Contains(lower, "blackhole") || strings.Contains(lower, "monitor")})
	}
	return out, nil
}

// Resolve turns an --audio value (ID, name, 1-based index as --list
// shows, "default" or "none") into a device ID; "" means no audio.
func Resolve(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", None:
		return "", nil
	case "default":
		return "default", nil
	}
	ds, err := Devices()
	if err != nil {
		return "", err
	}
	if i, err := strconv.Atoi(v); err == nil {
		if i < 1 || i > len(ds) {
			return "", fmt.Errorf("audio device %d: have 1 to %d (see --list)", i, len(ds))
		}
		return ds[i-1].ID, nil
	}
	for _, d := range ds {
		if d.ID == v || strings.EqualFold(d.Name, v) {
			return d.ID, nil
		}
	}
	var hits []Device
	for _, d := range ds {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(v)) {
			hits = append(hits, d)
		}
	}
	if len(hits) == 1 {
		return hits[0].ID, nil
	}
	return "", fmt.Errorf("audio device %q: %d devices match (see --list)", v, len(hits))
}

// Source records one input device.
type Source struct {
	device   string // a device ID
	rate     int
	channels int
}

// New returns a source for the device ID (see Devices), recording
// at 48 kHz in stereo (PulseAudio and PipeWire convert as needed).
func New(device string) *Source { return &Source{device: device, rate: 48000, channels: 2} }

// Run records until ctx ends, emitting 10 ms chunks. It returns an error when
// the device cannot be opened or fails, e.g. when it is unplugged.
func (a *Source) Run(ctx context.Context, emit func(*media.AudioChunk)) error {
	if err := initPortaudio(); err != nil {
		return err
	}
	frames := a.rate / 100
	// portaudio calls back on its own thread as data arrives; the callback
	// never blocks (a full queue drops the chunk), and Stop ends it cleanly.
	// A blocking Read would hang while the device delivers nothing, which a
	// suspended PulseAudio sink's monitor does whenever nothing plays.
	chunks := make(chan *media.AudioChunk, 32)
	cb := func(in []int16) {
		select {
		case chunks <- &media.AudioChunk{PCM: append([]int16(nil), in...), Rate: a.rate, Channels: a.channels, Captured: time.Now()}:
		default:
		}
	}
	st, err := a.open(frames, cb)
	if err != nil {
		return fmt.Errorf("opening audio device %q: %w", a.device, err)
	}
	defer st.Close()
	if err := st.Start(); err != nil {
		return fmt.Errorf("starting audio device %q: %w", a.device, err)
	}
	defer st.Abort() // Stop would wait for a silent device to deliver a last buffer

	// While the device delivers nothing, send silence at the real-time rate so
	// listeners keep a steady timeline. A vanished PulseAudio source is noticed
	// by a check that it still exists.
	gone := a.watch(ctx)
	const chunk = 10 * time.Millisecond
	tick := time.NewTicker(chunk)
	defer tick.Stop()
	last := time.Now() // when the newest emitted chunk ended
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-gone:
			return err
		case c := <-chunks:
			c.Captured = c.Captured.Add(-chunk)
			last = time.Now()
			emit(c)
		case now := <-tick.C:
			for ; now.Sub(last) >= 10*chunk; last = last.Add(chunk) {
				emit(&media.AudioChunk{PCM: make([]int16, frames*a.channels), Rate: a.rate, Channels: a.channels, Captured: last})
			}
		}
	}
}

func (a *Source) open(frames int, cb func([]int16)) (*portaudio.Stream, error) {
	dev, err := a.paDevice()
	if err != nil {
		return nil, err
	}
	p := portaudio.LowLatencyParameters(dev, nil)
	p.Input.Channels = a.channels
	p.SampleRate = float64(a.rate)
	p.FramesPerBuffer = frames
	p.Input.Latency = max(p.Input.Latency, 20*time.Millisecond)
	var st *portaudio.Stream
	withPulseSource(strings.TrimPrefix(a.device, pulsePrefix), strings.HasPrefix(a.device, pulsePrefix), func() {
		st, err = portaudio.OpenStream(p, cb)
	})
	return st, err
}

func (a *Source) paDevice() (*portaudio.DeviceInfo, error) {
	if a.device == "default" {
		return portaudio.DefaultInputDevice()
	}
	ds, err := portaudio.Devices()
	if err != nil {
		return nil, err
	}
	want := a.device
	if strings.HasPrefix(want, pulsePrefix) {
		want = "pulse" // ALSA's pulse plugin, pointed at the source by PULSE_SOURCE
	}
	for _, d := range ds {
		if d.Name == want && d.MaxInputChannels > 0 {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no input device %q", want)
}

// watch reports a device that has gone away.
func (a *Source) watch(ctx context.Context) <-chan error {
	gone := make(chan error, 1)
	src, isPulse := strings.CutPrefix(a.device, pulsePrefix)
	if !isPulse {
		return gone
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if ok, err := pulseSourceExists(src); err == nil && !ok {
				gone <- fmt.Errorf("audio device %q disappeared", src)
				return
			}
		}
	}()
	return gone
}
