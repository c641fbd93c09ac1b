package rtc_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/deskcast/deskcast/codec/opus"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
)

// toneSource is a fake sound card: 10 ms chunks of a stereo sine at hz,
// each emitted once the wall clock has passed its end (as a sound card
// delivers), stamped with the time of its start.
type toneSource struct {
	hz    float64
	start chan time.Time // receives the first chunk's capture time of each run
}

func (s *toneSource) Run(ctx context.Context, emit func(*media.AudioChunk)) error {
	t0 := time.Now()
	select {
	case s.start <- t0:
	default:
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		for time.Since(t0) < time.Duration(n+1)*10*time.Millisecond {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		pcm := make([]int16, 480*2)
		for i := range 480 {
			v := int16(0.25 * 32767 * math.Sin(2*math.Pi*s.hz*float64(n*480+i)/48000))
			pcm[2*i], pcm[2*i+1] = v, v
		}
		emit(&media.AudioChunk{PCM: pcm, Rate: 48000, Channels: 2, Captured: t0.Add(time.Duration(n) * 10 * time.Millisecond)})
	}
}

// newSoundFixture is newFixture with an Opus track over a 440 Hz tone.
func newSoundFixture(t *testing.T) (*fixture, *toneSource) {
	t.Helper()
	if err := opus.Available(); err != nil {
		t.Skip(err)
	}
	src := &toneSource{hz: 440, start: make(chan time.Time, 4)}
	sound := fanout.New[*media.AudioChunk](src, fanout.Options[*media.AudioChunk]{Queue: 16, IdleStop: time.Millisecond})
	track := pipeline.NewAudioTrack(sound, pipeline.AudioTrackOptions{Codec: media.Opus, Rate: 48000, Channels: 2, Queue: 10,
		IdleStop: time.Millisecond, Encoder: func() (pipeline.AudioEncoder, error) { return opus.New(opus.Options{}) }})
	t.Cleanup(func() { // after the server's
		track.Close()
		sound.Close()
	})
	return newFixtureWith(t, nil, track), src
}

func audioPacket(t *testing.T, c *whepclient.Client) whepclient.AudioPacket {
	t.Helper()
	select {
	case p := <-c.Audio:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no sound packet within 10 s")
		return whepclient.AudioPacket{}
	}
}

// goertzel is the RMS level of the left channel at hz.
func goertzel(pcm []int16, hz float64) float64 {
	n := len(pcm) / 2
	c := 2 * math.Cos(2*math.Pi*hz/48000)
	var s1, s2 float64
	for i := range n {
		s := float64(pcm[2*i])/32768 + c*s1 - s2
		s2, s1 = s1, s
	}
	return math.Sqrt(2*(s1*s1+s2*s2-c*s1*s2)) / float64(n)
}

func TestSound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		video bool
	}{{"with the picture", true}, {"sound alone", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newSoundFixture(t)
			c, _, _ := f.connect(t, context.Background(), whepclient.Options{Audio: true, NoVideo: !tc.video})
			dec, err := opus.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var pcm []int16
			first := audioPacket(t, c)
			prev := first
			for range 50 { // a second
				p := audioPacket(t, c)
				if p.Seq != prev.Seq+1 || p.Timestamp-prev.Timestamp != 960 {
					t.Errorf("packet after seq %d ts %d: seq %d ts %d, want the next seq, 960 ticks on", prev.Seq, prev.Timestamp, p.Seq, p.Timestamp)
				}
				out, err := dec.Decode(p.Data, 960)
				if err != nil {
					t.Fatal(err)
				}
				pcm = append(pcm, out...)
				prev = p
			}
			if !first.Marker {
				t.Error("the first packet has no marker bit")
			}
			want := 0.25 / math.Sqrt2
			if at := goertzel(pcm[len(pcm)/2:], 440); math.Abs(at-want) > want/10 {
				t.Errorf("440 Hz at %.4f, want %.4f", at, want)
			}
			if tc.video {
				// Beside sound, the picture leaves the browser room to hold it
				// back until the sound plays (lip sync).
				if d := frame(t, c, 10*time.Second).PlayoutDelay; d == nil || d.MinDelay != 0 || d.MaxDelay != 20 {
					t.Errorf("playout delay beside sound %+v, want min 0, max 200 ms", d)
				}
				if a, v := c.AudioStreamID.Load(), c.VideoStreamID.Load(); a != v || a != "deskcast" {
					t.Errorf("stream IDs: sound %v, picture %v; want both deskcast", a, v)
				}
			} else if n := c.Packets.Load(); n != 0 {
				t.Errorf("sound alone: %d video packets", n)
			}
			st := f.srv.Stats()
			if len(st) != 1 || !st[0].Audio || st[0].AudioPackets < 50 {
				t.Errorf("stats %+v: want one session with sound sent", st)
			}
		})
	}
}

// TestSoundInStep checks the clock mapping the browser lines the tracks up
// by: each track's RTP times, through its sender reports, name the wall
// clock time it was captured at, give or take its capture-to-send delay.
func TestSoundInStep(t *testing.T) {
	f, src := newSoundFixture(t)
	c, _, _ := f.connect(t, context.Background(), whepclient.Options{Audio: true})
	var soundStart time.Time
	select {
	case soundStart = <-src.start:
	case <-time.After(10 * time.Second):
		t.Fatal("the sound did not start")
	}
	first := audioPacket(t, c)
	frame(t, c, 10*time.Second)
	// Sender reports go out about once a second.
	deadline := time.Now().Add(8 * time.Second)
	for c.AudioSR.Load() == nil || c.VideoSR.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no sender reports on both tracks within 8 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The picture: a change captured now.
	var p whepclient.Frame
	for len(c.Frames) > 0 {
		<-c.Frames
	}
	f.screen.change <- struct{}{}
	p = frame(t, c, 5*time.Second)
	captured := f.screen.last()
	vsr := c.VideoSR.Load()
	videoAt := wall(vsr, p.Timestamp, 90000)
	// The sound: a packet captured a whole number of frames after the first.
	for len(c.Audio) > 1 {
		<-c.Audio
	}
	a := audioPacket(t, c)
	asr := c.AudioSR.Load()
	soundAt := wall(asr, a.Timestamp, 48000)
	soundCaptured := soundStart.Add(time.Duration(a.Timestamp-first.Timestamp) * time.Second / 48000)
	dv, da := videoAt.Sub(captured), soundAt.Sub(soundCaptured)
	t.Logf("sender reports put the picture %v and the sound %v after their capture; the sound %v behind the picture", dv, da, da-dv)
	for _, d := range []time.Duration{dv, da} {
		if d < -5*time.Millisecond || d > 80*time.Millisecond {
			t.Errorf("a track's reports are %v off its capture clock, want 0 to 80 ms", d)
		}
	}
	if off := (da - dv).Abs(); off > 40*time.Millisecond {
		t.Errorf("sound and picture %v apart on the reports' clock, want within 40 ms", off)
	}
}

// wall maps an RTP time to the wall clock through a sender report.
func wall(sr *rtcp.SenderReport, ts uint32, rate int) time.Time {
	sec, frac := sr.NTPTime>>32, sr.NTPTime&0xffffffff
	at := time.Unix(int64(sec)-2208988800, int64(frac*1e9>>32))
	return at.Add(time.Duration(int32(ts-sr.RTPTime)) * time.Second / time.Duration(rate))
}
