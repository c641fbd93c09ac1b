// Package audio records a sound input (a microphone or a loopback of what the
// computer plays), natively from PulseAudio or PipeWire on Linux and through
// portaudio elsewhere, and lists the inputs there are.
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
// each source (microphones and "Monitor of" loopbacks) is listed by name,
// then what portaudio finds besides.
func Devices() ([]Device, error) {
	out := []Device{{ID: "default", Name: "Default input", Default: true}}
	srcs, pulseErr := pulseSources()
	out = append(out, srcs...)
	if err := initPortaudio(); err != nil {
		if pulseErr == nil {
			return out, nil
		}
		return nil, err
	}
	def, _ := portaudio.DefaultInputDevice()
	ds, err := portaudio.Devices()
	if err != nil {
		if pulseErr == nil {
			return out, nil
		}
		return nil, fmt.Errorf("listing audio devices: %w", err)
	}
	for _, d := range ds {
		if d.MaxInputChannels == 0 || d.Name == "default" || (d.Name == "pulse" && len(srcs) > 0) {
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

// chunkDur is how much sound each chunk Run emits holds.
const chunkDur = 10 * time.Millisecond

// stream is an open input: it delivers chunks until closed, and tells
// through gone when the device goes away.
type stream interface {
	gone() <-chan error
	close()
}

// Run records until ctx ends, emitting 10 ms chunks. It returns an error when
// the device cannot be opened or fails, e.g. when it is unplugged.
func (a *Source) Run(ctx context.Context, emit func(*media.AudioChunk)) error {
	// The device delivers on its own thread, which emits each chunk itself
	// (one goroutine handing over to another 100 times a second costs more
	// than the rest of the capture), and never blocks: emit does not. Closing
	// the stream ends it cleanly, and nothing is emitted once Run returns. A
	// blocking read loop would hang while the device delivers nothing, which
	// a suspended PulseAudio sink's monitor does whenever nothing plays.
	var (
		mu     sync.Mutex
		last   = time.Now() // when the newest emitted chunk ended
		closed bool
	)
	deliver := func(c *media.AudioChunk) {
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			last = time.Now()
			emit(c)
		}
	}
	st, err := a.open(deliver)
	if err != nil {
		return fmt.Errorf("opening audio device %q: %w", a.device, err)
	}
	defer st.close()
	defer func() {
		mu.Lock()
		closed = true
		mu.Unlock()
	}()

	// While the device delivers nothing, send silence at the real-time rate so
	// listeners keep a steady timeline: a timer that looks once chunks may
	// have stopped for a while, then every chunk's length until they resume.
	const quiet = 10 * chunkDur
	idle := time.NewTimer(quiet)
	defer idle.Stop()
	frames := a.rate * int(chunkDur) / int(time.Second)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-st.gone():
			return err
		case now := <-idle.C:
			mu.Lock()
			wait := quiet - now.Sub(last)
			if wait <= 0 {
				for ; now.Sub(last) >= chunkDur; last = last.Add(chunkDur) {
					emit(&media.AudioChunk{PCM: make([]int16, frames*a.channels), Rate: a.rate, Channels: a.channels, Captured: last})
				}
				wait = chunkDur
			}
			mu.Unlock()
			idle.Reset(wait)
		}
	}
}

// paStream is an input opened through portaudio.
type paStream struct {
	st   *portaudio.Stream
	lost chan error
}

func (p *paStream) gone() <-chan error { return p.lost }
func (p *paStream) close() {
	_ = p.st.Abort() // Stop would wait for a silent device to deliver a last buffer
	_ = p.st.Close()
}

// openPortaudio opens the device through portaudio, which calls back on its
// own thread as data arrives.
func (a *Source) openPortaudio(deliver func(*media.AudioChunk)) (stream, error) {
	if err := initPortaudio(); err != nil {
		return nil, err
	}
	dev, err := a.paDevice()
	if err != nil {
		return nil, err
	}
	p := portaudio.LowLatencyParameters(dev, nil)
	p.Input.Channels = a.channels
	p.SampleRate = float64(a.rate)
	p.FramesPerBuffer = a.rate * int(chunkDur) / int(time.Second)
	p.Input.Latency = max(p.Input.Latency, 20*time.Millisecond)
	cb := func(in []int16) {
		deliver(&media.AudioChunk{PCM: append([]int16(nil), in...), Rate: a.rate, Channels: a.channels, Captured: time.Now().Add(-chunkDur)})
	}
	st, err := portaudio.OpenStream(p, cb)
	if err != nil {
		return nil, err
	}
	if err := st.Start(); err != nil {
		_ = st.Close()
		return nil, err
	}
	return &paStream{st: st, lost: make(chan error)}, nil
}

func (a *Source) paDevice() (*portaudio.DeviceInfo, error) {
	if a.device == "default" {
		return portaudio.DefaultInputDevice()
	}
	ds, err := portaudio.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Name == a.device && d.MaxInputChannels > 0 {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no input device %q", a.device)
}

// chunker cuts what a device delivers, in packets of any length, into
// chunks of chunkDur, each stamped with the capture time of its first
// sample: a packet's last sample is taken as captured when it arrives.
type chunker struct {
	rate, channels int
	buf            []int16
	emit           func(*media.AudioChunk)
}

func (c *chunker) add(pcm []int16, arrived time.Time) {
	size := c.rate * int(chunkDur) / int(time.Second) * c.channels
	if c.buf == nil {
		c.buf = make([]int16, 0, size)
	}
	for len(pcm) > 0 {
		n := min(size-len(c.buf), len(pcm))
		c.buf = append(c.buf, pcm[:n]...)
		pcm = pcm[n:]
		if len(c.buf) < size {
			return
		}
		end := arrived.Add(-time.Duration(len(pcm)/c.channels) * time.Second / time.Duration(c.rate))
		c.emit(&media.AudioChunk{PCM: c.buf, Rate: c.rate, Channels: c.channels, Captured: end.Add(-chunkDur)})
		c.buf = make([]int16, 0, size)
	}
}
