package audio

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
)

// record runs a Source for d and returns its samples, mono.
func record(t *testing.T, a *Source, d time.Duration) ([]float64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var pcm []int16
	err := a.Run(ctx, func(c *media.AudioChunk) {
		if c.Rate != 48000 || c.Channels != 2 || len(c.PCM) != 960 {
			t.Errorf("chunk: %d Hz, %d channels, %d samples; want 48000, 2, 960", c.Rate, c.Channels, len(c.PCM))
		}
		pcm = append(pcm, c.PCM...)
	})
	return testenv.Mono(pcm, 2), err
}

func TestFromPulseSink(t *testing.T) {
	sink := testenv.NewSink(t)
	ds, err := Devices()
	if err != nil {
		t.Fatal(err)
	}
	id := pulsePrefix + sink.Monitor()
	found := false
	for _, d := range ds {
		found = found || (d.ID == id && d.Monitor)
	}
	if !found {
		t.Fatalf("Devices() = %+v; want %s listed as a monitor", ds, id)
	}
	if got, err := Resolve(sink.Name); err != nil || got != id {
		t.Fatalf("Resolve(%q) = %q, %v; want %q", sink.Name, got, err, id)
	}

	a := New(id)
	t.Run("silence", func(t *testing.T) {
		s, err := record(t, a, 600*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) < 48000/4 {
			t.Fatalf("recorded %d samples in 600 ms", len(s))
		}
		if lvl := testenv.Goertzel(s, 48000, 440); lvl > 0.01 {
			t.Fatalf("440 Hz level in silence = %.3f", lvl)
		}
	})
	t.Run("440 Hz", func(t *testing.T) {
		sink.Play(testenv.Tone(440, 0.5, 20*time.Second))
		// A null sink just loaded passes on what pacat plays into it only
		// about 2 s after pacat starts (measured natively and through
		// portaudio alike), Run filling the gap with silence; and a record
		// stream opened in that window may hear a moment of the tone, then
		// a pause of about 1.5 s (parec too). So: a whole second of steady
		// tone, within 12 s.
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		defer cancel()
		var pcm []int16
		at440, at880 := 0.0, 0.0
		err := a.Run(ctx, func(c *media.AudioChunk) {
			if len(c.PCM) != 960 {
				t.Errorf("chunk of %d samples, want 960", len(c.PCM))
			}
			pcm = append(pcm, c.PCM...)
			if len(pcm) < 2*48000 || len(pcm)%(2*4800) != 0 { // every 100 ms, once a second is in
				return
			}
			s := testenv.Mono(pcm[len(pcm)-2*48000:], 2)
			at440, at880 = testenv.Goertzel(s, 48000, 440), testenv.Goertzel(s, 48000, 880)
			if at440 >= 0.4 && at440 <= 0.6 && at880 <= 0.05 {
				cancel()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if at440 < 0.4 || at440 > 0.6 || at880 > 0.05 {
			t.Fatalf("no steady second of tone within 12 s (%d samples recorded); last levels: 440 Hz %.3f (want ~0.5), 880 Hz %.3f (want ~0)",
				len(pcm)/2, at440, at880)
		}
	})
	t.Run("device unplugged", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		started := make(chan struct{}, 1)
		go func() {
			errc <- a.Run(ctx, func(*media.AudioChunk) {
				select {
				case started <- struct{}{}:
				default:
				}
			})
		}()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("Run returned %v before delivering any audio", err)
		case <-time.After(5 * time.Second):
			cancel()
			select {
			case err := <-errc:
				t.Fatalf("no audio within 5 s (Run then returned %v)", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no audio within 5 s, and Run ignored its cancelled ctx for 5 s more")
			}
		}
		sink.Unload()
		var err error
		select {
		case err = <-errc:
		case <-time.After(15 * time.Second): // ctx ends after 10 s; Run ignoring it too is a failure
			t.Fatal("Run did not return within 15 s of the device going away, though its ctx ended at 10 s")
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("Run after the device went away = %v, want an error within 10 s", err)
		}
		t.Logf("error: %v", err)
	})
}

func TestChunker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		packets []int           // stereo frames in each packet, one arriving each ms…
		arrive  []time.Duration // …or at these times
		want    []time.Duration // each chunk's capture time, after t0
	}{
		{"one chunk a packet", []int{480, 480, 480}, []time.Duration{ms(10), ms(20), ms(30)}, []time.Duration{0, ms(10), ms(20)}},
		{"small packets", []int{120, 120, 120, 120, 120}, []time.Duration{ms(2), ms(5), ms(7), ms(10), ms(12)}, []time.Duration{0}},
		{"a packet of two and a half chunks", []int{1200, 240}, []time.Duration{ms(25), ms(30)}, []time.Duration{0, ms(10), ms(20)}},
		{"nothing whole", []int{479}, []time.Duration{ms(10)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			next := int16(0)
			c := &chunker{rate: 48000, channels: 2, emit: func(ch *media.AudioChunk) {
				if len(ch.PCM) != 960 || ch.Rate != 48000 || ch.Channels != 2 {
					t.Fatalf("chunk of %d samples at %d Hz, %d channels", len(ch.PCM), ch.Rate, ch.Channels)
				}
				for _, v := range ch.PCM { // every sample once, in order
					if v != next {
						t.Fatalf("sample %d, want %d", v, next)
					}
					next++
				}
				got = append(got, ch.Captured.Sub(t0))
			}}
			sample := int16(0)
			buf := make([]int16, 4096)
			for i, n := range tt.packets {
				p := buf[:n*2]
				for j := range p {
					p[j] = sample
					sample++
				}
				c.add(p, t0.Add(tt.arrive[i]))
				clear(buf) // the chunker keeps no reference to a packet
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("chunks captured at %v, want %v", got, tt.want)
			}
		})
	}
}
