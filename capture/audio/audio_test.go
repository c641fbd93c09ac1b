package audio

import (
	"context"
	"errors"
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
		sink.Play(testenv.Tone(440, 0.5, 5*time.Second))
		// A new PulseAudio record stream delivers its first data after ~2 s.
		s, err := record(t, a, 3500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) < 48000 {
			t.Fatalf("recorded %d samples in 3.5 s, want at least the last second's 48000: "+
				"the record stream delivered too late or too little", len(s))
		}
		s = s[len(s)-48000:] // the last second
		at440, at880 := testenv.Goertzel(s, 48000, 440), testenv.Goertzel(s, 48000, 880)
		if at440 < 0.4 || at440 > 0.6 || at880 > 0.05 {
			t.Fatalf("levels: 440 Hz %.3f (want ~0.5), 880 Hz %.3f (want ~0)", at440, at880)
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
			// A new record stream delivers its first data after ~2 s.
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
