package audio

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

// pulseAddrs are the sound server's addresses (PulseAudio, or PipeWire's
// pipewire-pulse), in libpulse's order: $PULSE_SERVER, then the sockets
// that exist of the user's runtime directory, the runtime link in
// ~/.config/pulse that libpulse makes without one (as for root), and the
// system-wide daemon's.
func pulseAddrs() [][2]string {
	if v := os.Getenv("PULSE_SERVER"); v != "" {
		var out [][2]string
		for _, f := range strings.Fields(v) {
			if i := strings.IndexByte(f, '}'); strings.HasPrefix(f, "{") && i > 0 {
				f = f[i+1:] // "{host}": meant for that host; this is the one asked
			}
			switch {
			case strings.HasPrefix(f, "unix:"):
				out = append(out, [2]string{"unix", f[len("unix:"):]})
			case strings.HasPrefix(f, "/"):
				out = append(out, [2]string{"unix", f})
			case f != "":
				network, host := "tcp", f
				for _, p := range []string{"tcp4", "tcp6", "tcp"} {
					if h, ok := strings.CutPrefix(f, p+":"); ok {
						network, host = p, h
						break
					}
				}
				if _, _, err := net.SplitHostPort(host); err != nil {
					host = net.JoinHostPort(strings.Trim(host, "[]"), "4713")
				}
				out = append(out, [2]string{network, host})
			}
		}
		return out
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
	var out [][2]string
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeSocket != 0 {
			out = append(out, [2]string{"unix", c})
		}
	}
	return out
}

// pulseConn is a connection to the sound server, read through a buffer: one
// read takes in every packet that is waiting. While a record stream runs,
// reads also wait until its next chunk is due (see pacer).
type pulseConn struct {
	net.Conn
	r     *bufio.Reader
	pace  atomic.Pointer[pacer] // nil when nothing records
	after time.Time             // when the newest read returned
	slept bool                  // the newest read waited for data to come
}

// Read is only called by the protocol client's reading goroutine, which
// also calls its callback: after, slept and the pacer are that goroutine's.
func (c *pulseConn) Read(p []byte) (int, error) {
	if pace := c.pace.Load(); c.r.Buffered() == 0 && pace != nil {
		if d := time.Until(pace.next); d > 0 {
			time.Sleep(min(d, chunkDur))
		}
	}
	t0 := time.Now()
	n, err := c.r.Read(p)
	c.after = time.Now()
	// A read that took a while waited for the packet: it came just now.
	c.slept = c.after.Sub(t0) > 200*time.Microsecond
	return n, err
}

// pacer spaces the reads of a record stream: a sink's monitor may post its
// sound in blocks of 2.5 ms (as the null sink does for a player asking 10 ms
// of latency), and waking up for each, with its goroutine hand-overs and
// the Go runtime's own wake-ups, cost more CPU than all else the sound
// does. So once a chunk is whole, the next read waits until the next one
// should be: chunkDur after the newest chunk seen to arrive (the read
// waited for it), give or take slack, counted in chunks from there so that
// a late read does not push the next ones later. Every resync chunks (and
// whenever a read finds it waited for data anyway) a chunk is seen arrive
// afresh, which follows a device whose clock is not the system's.
type pacer struct {
	anchor time.Time // when the chunk counted from arrived
	n      int       // chunks whole since
	next   time.Time // reads wait until then
}

const (
	paceSlack  = 300 * time.Microsecond
	paceResync = 100
)

// chunk notes that a chunk became whole with the newest read.
func (p *pacer) chunk(c *pulseConn) {
	if c.slept || p.anchor.IsZero() || p.n >= paceResync {
		p.anchor, p.n = c.after, 0
	}
	p.n++
	if p.n >= paceResync {
		p.next = time.Time{} // wait for the data itself, to see it arrive
		return
	}
	p.next = p.anchor.Add(time.Duration(p.n)*chunkDur + paceSlack)
}

// dialPulse connects to the sound server; callback gets what the server
// sends besides replies, from the client's reading goroutine.
func dialPulse(callback func(any)) (*proto.Client, *pulseConn, error) {
	addrs := pulseAddrs()
	if len(addrs) == 0 {
		return nil, nil, errors.New("connecting to PulseAudio: no server socket found")
	}
	cookie, err := os.ReadFile(cmp.Or(os.Getenv("PULSE_COOKIE"), filepath.Join(os.Getenv("HOME"), ".config", "pulse", "cookie")))
	if err != nil {
		cookie = make([]byte, 256) // what a server with auth-anonymous takes
	}
	var errs []error
	for _, a := range addrs {
		nc, err := net.DialTimeout(a[0], a[1], 3*time.Second)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		conn := &pulseConn{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10)}
		c := &proto.Client{}
		c.SetTimeout(3 * time.Second)
		c.Callback = callback
		c.Open(conn)
		var auth proto.AuthReply
		if err := c.Request(&proto.Auth{Version: c.Version(), Cookie: cookie}, &auth); err != nil {
			nc.Close()
			errs = append(errs, err)
			continue
		}
		c.SetVersion(auth.Version)
		if err := c.Request(&proto.SetClientName{Props: proto.PropList{
			"application.name":       proto.PropListString("Deskcast"),
			"application.icon_name":  proto.PropListString("deskcast"),
			"application.process.id": proto.PropListString(strconv.Itoa(os.Getpid())),
		}}, &proto.SetClientNameReply{}); err != nil {
			nc.Close()
			errs = append(errs, err)
			continue
		}
		return c, conn, nil
	}
	return nil, nil, fmt.Errorf("connecting to PulseAudio: %w", errors.Join(errs...))
}

// pulseSources lists the sound server's sources.
func pulseSources() ([]Device, error) {
	c, conn, err := dialPulse(func(any) {})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var srcs proto.GetSourceInfoListReply
	if err := c.Request(&proto.GetSourceInfoList{}, &srcs); err != nil {
		return nil, fmt.Errorf("listing PulseAudio sources: %w", err)
	}
	var server proto.GetServerInfoReply
	_ = c.Request(&proto.GetServerInfo{}, &server)
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
	c     *proto.Client
	conn  *pulseConn
	index atomic.Uint32 // the record stream's, proto.Undefined until it exists
	lost  chan error
	stop  chan struct{}
	wg    sync.WaitGroup
}

func (p *pulseStream) gone() <-chan error { return p.lost }

// report says the stream is lost, unless that has been said already.
func (p *pulseStream) report(err error) {
	select {
	case p.lost <- err:
	default:
	}
}

func (p *pulseStream) close() {
	close(p.stop)
	p.wg.Wait()
	_ = p.c.Request(&proto.DeleteRecordStream{StreamIndex: p.index.Load()}, nil)
	p.conn.Close()
}

// source asks the server for the named source ("" for the default one).
func (p *pulseStream) source(name string) error {
	return p.c.Request(&proto.GetSourceInfo{SourceIndex: proto.Undefined, SourceName: name}, &proto.GetSourceInfoReply{})
}

// openPulse records the named source ("" for the default one) at 48 kHz
// stereo in 10 ms fragments; the server converts.
func (a *Source) openPulse(name string, deliver func(*media.AudioChunk)) (stream, error) {
	// The client calls back from its reading goroutine, which also makes
	// every Read of conn: the pacer is that goroutine's alone.
	var conn *pulseConn
	pace := &pacer{}
	p := &pulseStream{lost: make(chan error, 1), stop: make(chan struct{})}
	p.index.Store(proto.Undefined)
	ch := &chunker{rate: a.rate, channels: a.channels, emit: func(ac *media.AudioChunk) {
		pace.chunk(conn)
		deliver(ac)
	}}
	c, conn, err := dialPulse(func(msg any) {
		switch m := msg.(type) {
		case *proto.DataPacket:
			if m.StreamIndex == p.index.Load() && len(m.Data) >= 2 {
				// Little-endian s16 is this machine's int16 on every Linux
				// that Deskcast builds for; the chunker copies it.
				ch.add(unsafe.Slice((*int16)(unsafe.Pointer(&m.Data[0])), len(m.Data)/2), conn.after)
			}
		case *proto.RecordStreamKilled:
			if m.StreamIndex == p.index.Load() {
				p.report(errors.New("the sound server ended the recording"))
			}
		case *proto.ConnectionClosed:
			p.report(errors.New("the sound server closed the connection"))
		}
	})
	if err != nil {
		return nil, err
	}
	p.c, p.conn = c, conn
	if err := p.source(name); err != nil {
		conn.Close()
		if name == "" {
			return nil, fmt.Errorf("no default PulseAudio source: %w", err)
		}
		return nil, fmt.Errorf("no PulseAudio source %q: %w", name, err)
	}
	frag := uint32(a.rate * int(chunkDur) / int(time.Second) * a.channels * 2)
	req := &proto.CreateRecordStream{
		SampleSpec:  proto.SampleSpec{Format: proto.FormatInt16LE, Channels: byte(a.channels), Rate: uint32(a.rate)},
		ChannelMap:  proto.ChannelMap{proto.ChannelLeft, proto.ChannelRight},
		SourceIndex: proto.Undefined, SourceName: name,
		// The server keeps at most maxBacklog fragments for us and drops
		// the oldest past that, rather than its default of 4 MB (20 s).
		BufferMaxLength: maxBacklog * frag, BufferFragSize: frag,
		Corked: true, DirectOnInputIndex: proto.Undefined,
		Properties:     proto.PropList{"media.name": proto.PropListString("Deskcast screen share")},
		ChannelVolumes: proto.ChannelVolumes{0x100, 0x100},
	}
	var reply proto.CreateRecordStreamReply
	if err := c.Request(req, &reply); err != nil {
		conn.Close()
		return nil, fmt.Errorf("opening a PulseAudio record stream: %w", err)
	}
	p.index.Store(reply.StreamIndex)
	conn.pace.Store(pace)
	_ = c.Request(&proto.FlushRecordStream{StreamIndex: reply.StreamIndex}, nil)
	if err := c.Request(&proto.CorkRecordStream{StreamIndex: reply.StreamIndex, Corked: false}, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("starting a PulseAudio record stream: %w", err)
	}
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
		if err := p.source(name); err != nil {
			what := "the default input"
			if name != "" {
				what = fmt.Sprintf("audio device %q", name)
			}
			p.report(fmt.Errorf("%s is gone: %w", what, err))
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
