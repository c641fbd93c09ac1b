package rtc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
	"github.com/deskcast/deskcast/rtc"
)

// screen is a fake picture source: a picture at once, then one more each
// time change is sent a value (a still screen sends nothing).
type screen struct {
	w, h   int
	change chan struct{}
	lastAt atomic.Int64 // the newest picture's capture time, unix nanos
}

// last is when the newest picture was captured.
func (s *screen) last() time.Time { return time.Unix(0, s.lastAt.Load()) }

func (s *screen) Run(ctx context.Context, emit func(*media.Picture)) error {
	n := 0
	for {
		// A gradient with a square that moves with each change.
		pix := make([]byte, s.w*s.h*4)
		for y := range s.h {
			for x := range s.w {
				px := pix[(y*s.w+x)*4:]
				px[0], px[1], px[2] = byte(x), byte(y), byte(x+y)
				if x >= 20+n*8 && x < 60+n*8 && y >= 40 && y < 80 {
					px[0], px[1], px[2] = 255, 255, 255
				}
			}
		}
		p := media.NewPicture(pix, s.w, s.h, s.w*4, media.BGRX, nil)
		p.Captured = time.Now()
		s.lastAt.Store(p.Captured.UnixNano())
		emit(p)
		n++
		select {
		case <-ctx.Done():
			return nil
		case <-s.change:
		}
	}
}

type fixture struct {
	srv    *rtc.Server
	pipe   *pipeline.Pipeline
	track  *pipeline.Track
	rec    *recordingTrack
	screen *screen
}

// recordingTrack is the real track, recording the bitrates the server sets.
type recordingTrack struct {
	*pipeline.Track
	bitrate atomic.Int64
}

func (r *recordingTrack) SetBitrate(bps int) {
	r.bitrate.Store(int64(bps))
	r.Track.SetBitrate(bps)
}

func newFixture(t *testing.T, tcp net.Listener) *fixture {
	t.Helper()
	return newFixtureWith(t, tcp, nil)
}

// newFixtureWith is newFixture with sound (nil for none).
func newFixtureWith(t *testing.T, tcp net.Listener, audio rtc.AudioTrack) *fixture {
	t.Helper()
	if err := h264.Available(); err != nil {
		t.Skip(err)
	}
	sc := &screen{w: 320, h: 240, change: make(chan struct{})}
	pipe := pipeline.New(sc, pipeline.Options{IdleStop: 10 * time.Millisecond})
	track := pipe.Track(pipeline.TrackOptions{Name: "h264", Delivery: pipeline.FromKeyframe, GOP: 100, GOPBytes: 1 << 20,
		Encoder: func() (media.Encoder, error) { return h264.New(h264.Options{TemporalLayers: 2}) }})
	rt := &recordingTrack{Track: track}
	srv, err := rtc.New(rtc.Config{Tracks: map[media.Codec]rtc.Track{media.H264: rt}, Audio: audio, TCP: tcp, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, pipe: pipe, track: track, rec: rt, screen: sc}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		pipe.Close()
	})
	return f
}

// connect offers a new client and answers it; release is closed when the server lets go.
func (f *fixture) connect(t *testing.T, ctx context.Context, opt whepclient.Options) (*whepclient.Client, string, chan struct{}) {
	t.Helper()
	c, offer, err := whepclient.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	released := make(chan struct{})
	answer, id, err := f.srv.Offer(ctx, offer, rtc.Viewer{ID: "test", Addr: "127.0.0.1:1"}, func() { close(released) })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Answer(answer); err != nil {
		t.Fatal(err)
	}
	return c, id, released
}

func frame(t *testing.T, c *whepclient.Client, within time.Duration) whepclient.Frame {
	t.Helper()
	select {
	case f := <-c.Frames:
		return f
	case <-time.After(within):
		t.Fatalf("no frame within %v (%d packets)", within, c.Packets.Load())
		return whepclient.Frame{}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMediaArrives(t *testing.T) {
	for _, tc := range []struct {
		name string
		tcp  bool
	}{{"udp", false}, {"tcp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var ln net.Listener
			if tc.tcp {
				var err error
				if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
			}
			f := newFixture(t, ln)
			c, _, _ := f.connect(t, context.Background(), whepclient.Options{TCPOnly: tc.tcp})
			first := frame(t, c, 10*time.Second)
			if !first.Keyframe {
				t.Fatalf("first frame is not an IDR: NAL types %v", whepclient.NALTypes(first.Data))
			}
			if types := whepclient.NALTypes(first.Data); len(types) < 3 || types[0] != 7 || types[1] != 8 {
				t.Errorf("first frame's NAL types %v, want SPS, PPS, IDR", types)
			}
			if d := first.PlayoutDelay; d == nil || d.MinDelay != 0 || d.MaxDelay != 0 {
				t.Errorf("playout delay of a picture without sound %+v, want min = max = 0", d)
			}
			dec, err := h264.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			if img, err := dec.Decode(first.Data); err != nil || img.Bounds().Dx() != 320 {
				t.Fatalf("decoding the first frame: %v", err)
			}
			start := time.Now()
			f.screen.change <- struct{}{}
			next := frame(t, c, 5*time.Second)
			if next.Keyframe {
				t.Error("a change made an IDR, want a P frame")
			}
			if _, err := dec.Decode(next.Data); err != nil {
				t.Errorf("decoding the P frame: %v", err)
			}
			// 90 kHz from the capture times: the gap since the first frame, give or take.
			gap := time.Duration(next.Timestamp-first.Timestamp) * time.Second / 90000
			if gap <= 0 || gap > time.Since(start)+10*time.Second {
				t.Errorf("RTP timestamps %d apart (%v)", next.Timestamp-first.Timestamp, gap)
			}
			t.Logf("%s: IDR %d bytes, P frame %d bytes", tc.name, len(first.Data), len(next.Data))
		})
	}
}

func TestStillScreenSendsNothing(t *testing.T) {
	f := newFixture(t, nil)
	c, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	frame(t, c, 10*time.Second)
	before := c.Bytes.Load()
	time.Sleep(2 * time.Second)
	if got := c.Bytes.Load() - before; got > 0 {
		t.Errorf("a still screen sent %d media bytes in 2 s", got)
	}
	st := f.srv.Stats()
	if len(st) != 1 || st[0].Frames != 1 || st[0].Codec != media.H264 {
		t.Errorf("stats %+v, want one session with one H.264 frame", st)
	}
}

func TestPLIGivesKeyframe(t *testing.T) {
	f := newFixture(t, nil)
	c, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	frame(t, c, 10*time.Second)
	time.Sleep(600 * time.Millisecond) // past the first request's rate limit
	if err := c.PLI(); err != nil {
		t.Fatal(err)
	}
	if fr := frame(t, c, 5*time.Second); !fr.Keyframe {
		t.Error("a PLI brought a P frame, want an IDR")
	}
	if st := f.srv.Stats(); st[0].PLIs == 0 {
		t.Errorf("stats %+v count no PLI", st[0])
	}
}

func TestEndAndContext(t *testing.T) {
	f := newFixture(t, nil)
	c, id, released := f.connect(t, context.Background(), whepclient.Options{})
	frame(t, c, 10*time.Second)
	if err := f.srv.End(id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-released:
	default:
		t.Fatal("End returned before release")
	}
	if err := f.srv.End(id); !errors.Is(err, rtc.ErrNoSession) {
		t.Errorf("End again: %v, want ErrNoSession", err)
	}
	if n := f.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions after End", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c2, _, released2 := f.connect(t, ctx, whepclient.Options{})
	frame(t, c2, 10*time.Second)
	cancel()
	select {
	case <-released2:
	case <-time.After(5 * time.Second):
		t.Fatal("the context ended but the session stayed")
	}
}

func TestBadOffers(t *testing.T) {
	f := newFixture(t, nil)
	vp8Only := whepOffer(t, whepclient.Options{Codecs: []webrtcCodec{vp8}})
	for _, tc := range []struct{ name, offer, reason string }{
		{"empty", "", "empty offer"},
		{"garbage", "hello", "not an SDP offer"},
		{"no video", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no video"},
		{"vp8 only", vp8Only, "no codec in common"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			released := 0
			_, _, err := f.srv.Offer(context.Background(), tc.offer, rtc.Viewer{}, func() { released++ })
			if !errors.Is(err, rtc.ErrBadOffer) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err %v, want ErrBadOffer saying %q", err, tc.reason)
			}
			if released != 1 {
				t.Errorf("release called %d times, want 1", released)
			}
		})
	}
	if n := f.srv.Sessions(); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

// A viewer who joins a moving screen starts from the kept group of
// pictures: its first frame is the group's IDR, what follows decodes, and
// the viewer already watching gets no new keyframe.
func TestJoinerReplaysTheGroup(t *testing.T) {
	f := newFixture(t, nil)
	a, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	if fr := frame(t, a, 10*time.Second); !fr.Keyframe {
		t.Fatal("the first viewer's first frame is not an IDR")
	}
	for range 5 {
		f.screen.change <- struct{}{}
		if fr := frame(t, a, 5*time.Second); fr.Keyframe {
			t.Fatal("a change made an IDR")
		}
	}
	b, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	dec, err := h264.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	first := frame(t, b, 10*time.Second)
	if !first.Keyframe {
		t.Fatalf("the joiner's first frame is not an IDR: NAL types %v", whepclient.NALTypes(first.Data))
	}
	if _, err := dec.Decode(first.Data); err != nil {
		t.Fatal(err)
	}
	// The rest of the group (droppable frames may be left out while the
	// group drains), then a live change: every frame decodes.
	f.screen.change <- struct{}{}
	got := 1
	for quiet := false; !quiet; {
		select {
		case fr := <-b.Frames:
			if fr.Keyframe {
				t.Fatal("the joiner got a second IDR")
			}
			if _, err := dec.Decode(fr.Data); err != nil {
				t.Fatalf("decoding the group's frame %d: %v", got, err)
			}
			got++
		case <-time.After(time.Second):
			quiet = true
		}
	}
	if got < 4 { // the IDR, two of the group's reference frames, the change
		t.Fatalf("the joiner got %d frames", got)
	}
	select {
	case fr := <-a.Frames:
		if fr.Keyframe {
			t.Fatal("the viewer already watching got an IDR when another joined")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the viewer already watching did not get the change")
	}
	for _, st := range f.srv.Stats() {
		if st.Estimate <= 0 {
			t.Errorf("session %s: no bandwidth estimate", st.ID)
		}
	}
}

// The server sets the track's bitrate from its viewers' estimates: on
// loopback nothing limits them, so the encoder gets the most it may.
func TestRoomBitrate(t *testing.T) {
	f := newFixture(t, nil)
	c, _, _ := f.connect(t, context.Background(), whepclient.Options{})
	frame(t, c, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for f.rec.bitrate.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := f.rec.bitrate.Load(); got != 3_000_000 {
		t.Fatalf("the track's bitrate is %d, want 3000000 (MaxBitrate: nothing limits a loopback viewer)", got)
	}
}
