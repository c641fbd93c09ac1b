package audio

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/jfreymuth/pulse"
	"github.com/jfreymuth/pulse/proto"
	"golang.org/x/sys/unix"

	"github.com/deskcast/deskcast/media"
)

// pulsePrefix marks device IDs that name a PulseAudio (or PipeWire) source.
const pulsePrefix = "pulse:"

// open records a PulseAudio source natively, and the default input from
// PulseAudio's default source when a server answers; anything else, and the
// default input without a server, through portaudio.
//
// The native record stream asks for 10 ms fragments: measured with a null
// sink, a burst reaches the chunks 24 ms after pacat (10 ms latency) is
// handed it, its first data comes 1 ms after it starts, and it costs a
// quarter of what portaudio through ALSA's pulse plugin does (2.4% of a
// core against 9%), which also starts delivering only after about 2 s.
func (a *Source) open(deliver func(*media.AudioChunk)) (stream, error) {
	if name, ok := strings.CutPrefix(a.device, pulsePrefix); ok {
		return a.openPulse(name, deliver)
	}
	if a.device == "default" {
		if st, err := a.openPulse("", deliver); err == nil {
			return st, nil
		}
	}
	return a.openPortaudio(deliver)
}

// maxBacklog is how many fragments (10 ms each) the sound server holds for a
// record stream that reads too slowly before it drops the oldest: room for
// the largest block a sink's monitor may post at once, and a bound on what a
// stalled reader finds waiting.
const maxBacklog = 50

// pulseServer is the server string for the PulseAudio (or pipewire-pulse)
// sockets, in libpulse's order: $PULSE_SERVER (left to the client), the
// user's runtime directory, the runtime link in ~/.config/pulse that
// libpulse makes without one (as for root), the system-wide daemon.
func pulseServer() string {
	if os.Getenv("PULSE_SERVER") != "" {
		return ""
	}
	var cands []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		cands = append(cands, filepath.Join(d, "pulse", "native"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		links, _ := filepath.Glob(filepath.Join(home, ".config", "pulse", "*-runtime", "native"))
		cands = append(cands, links...)
	}
	cands = append(cands, "/run/pulse/native", "/var/run/pulse/native")
	var s []string
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeSocket != 0 {
			s = append(s, "unix:"+c)
		}
	}
	if len(s) == 0 {
		return "unix:/nonexistent/pulse/native" // so the client fails rather than guess
	}
	return strings.Join(s, " ")
}

// pulseClient connects to the sound server.
func pulseClient() (*pulse.Client, error) {
	c, err := pulse.NewClient(pulse.ClientServerString(pulseServer()), pulse.ClientApplicationName("Deskcast"))
	if err != nil {
		return nil, fmt.Errorf("connecting to PulseAudio: %w", err)
	}
	return c, nil
}

// pulseSources lists the sound server's sources.
func pulseSources() ([]Device, error) {
	c, err := pulseClient()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var srcs proto.GetSourceInfoListReply
	if err := c.RawRequest(&proto.GetSourceInfoList{}, &srcs); err != nil {
		return nil, fmt.Errorf("listing PulseAudio sources: %w", err)
	}
	var server proto.GetServerInfoReply
	_ = c.RawRequest(&proto.GetServerInfo{}, &server)
	var ds []Device
	for _, s := range srcs {
		name := s.SourceName
		if d, ok := s.Properties["device.description"]; ok && strings.TrimRight(d.String(), "\x00") != "" {
			name = strings.TrimRight(d.String(), "\x00")
		}
		ds = append(ds, Device{ID: pulsePrefix + s.SourceName, Name: name,
			// For a source, the field holds the sink it monitors.
			Monitor: s.MonitorSourceIndex != proto.Undefined || strings.HasSuffix(s.SourceName, ".monitor"),
			Default: server.DefaultSourceName == s.SourceName})
	}
	return ds, nil
}

// pulseStream is a native PulseAudio record stream.
type pulseStream struct {
	c    *pulse.Client
	r    *pulse.RecordStream
	lost chan error
	stop chan struct{}
	wg   sync.WaitGroup
}

func (p *pulseStream) gone() <-chan error { return p.lost }

func (p *pulseStream) close() {
	close(p.stop)
	p.wg.Wait()
	p.r.Close()
	p.c.Close()
}

// pulseWriter hands the record stream's data to a chunker; the client calls
// it from its reading goroutine, one packet at a time.
type pulseWriter struct {
	ch *chunker
}

func (w pulseWriter) Format() byte { return proto.FormatInt16LE }
func (w pulseWriter) Write(b []byte) (int, error) {
	n := len(b) / 2
	if n > 0 {
		// Little-endian s16 is this machine's int16 on every Linux that
		// Deskcast builds for; the chunker copies it.
		w.ch.add(unsafe.Slice((*int16)(unsafe.Pointer(&b[0])), n), time.Now())
	}
	return len(b), nil
}

// openPulse records the named source ("" for the default one) at 48 kHz
// stereo in 10 ms fragments; the server converts.
func (a *Source) openPulse(name string, deliver func(*media.AudioChunk)) (stream, error) {
	c, err := pulseClient()
	if err != nil {
		return nil, err
	}
	frag := uint32(a.rate * int(chunkDur) / int(time.Second) * a.channels * 2)
	opts := []pulse.RecordOption{pulse.RecordStereo, pulse.RecordSampleRate(a.rate),
		pulse.RecordBufferFragmentSize(frag),
		// The server keeps at most maxBacklog fragments for us and drops
		// the oldest past that, rather than its default of 4 MB (20 s).
		pulse.RecordRawOption(func(r *proto.CreateRecordStream) { r.BufferMaxLength = maxBacklog * frag }),
		pulse.RecordMediaName("Deskcast screen share")}
	if name != "" {
		src, err := c.SourceByID(name)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("no PulseAudio source %q: %w", name, err)
		}
		opts = append(opts, pulse.RecordSource(src))
	}
	ch := &chunker{rate: a.rate, channels: a.channels, emit: deliver}
	r, err := c.NewRecord(pulseWriter{ch: ch}, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("opening a PulseAudio record stream: %w", err)
	}
	r.Start()
	p := &pulseStream{c: c, r: r, lost: make(chan error, 1), stop: make(chan struct{})}
	p.wg.Go(func() { p.watch(name) })
	return p, nil
}

// watch reports the source gone, or the server, checking once a second.
func (p *pulseStream) watch(name string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		var err error
		if name != "" {
			_, err = p.c.SourceByID(name)
		} else {
			_, err = p.c.DefaultSource()
		}
		if err != nil {
			what := "the default input"
			if name != "" {
				what = fmt.Sprintf("audio device %q", name)
			}
			p.lost <- fmt.Errorf("%s is gone: %w", what, err)
			return
		}
	}
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
