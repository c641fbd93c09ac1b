package opus_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/opus"
)

func skipUnavailable(t testing.TB) {
	t.Helper()
	if err := opus.Available(); err != nil {
		t.Skip(err)
	}
}

// tone returns n samples per channel of a stereo sine at hz, amplitude amp
// (of full scale), starting at sample start.
func tone(hz, amp float64, start, n int) []int16 {
	pcm := make([]int16, n*opus.Channels)
	for i := range n {
		v := int16(amp * 32767 * math.Sin(2*math.Pi*hz*float64(start+i)/opus.Rate))
		pcm[2*i], pcm[2*i+1] = v, v
	}
	return pcm
}

// goertzel is the level (RMS, of full scale) of the left channel at hz.
func goertzel(pcm []int16, hz float64) float64 {
	n := len(pcm) / 2
	w := 2 * math.Pi * hz / opus.Rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for i := range n {
		s := float64(pcm[2*i])/32768 + c*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return math.Sqrt(2*p) / float64(n) // RMS of the sine component
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		f := float64(v) / 32768
		sum += f * f
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// newDecoder returns a decoder that is closed when the test ends.
func newDecoder(t *testing.T) *opus.Decoder {
	t.Helper()
	d, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// roundTrip encodes one second of pcm in frames and decodes it.
func roundTrip(t *testing.T, opt opus.Options, gen func(start, n int) []int16) (out []int16, sizes []int) {
	t.Helper()
	enc, err := opus.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec := newDecoder(t)
	n := enc.FrameSamples()
	for start := 0; start < opus.Rate; start += n {
		pkt, err := enc.Encode(gen(start, n))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(pkt))
		pcm, err := dec.Decode(pkt, n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pcm...)
	}
	return out, sizes
}

func TestTone(t *testing.T) {
	skipUnavailable(t)
	for _, tc := range []struct {
		name string
		opt  opus.Options
		hz   float64
	}{
		{"audio 20ms 440Hz", opus.Options{}, 440},
		{"audio 10ms 440Hz", opus.Options{Frame: 10 * time.Millisecond}, 440},
		{"lowdelay 10ms 880Hz", opus.Options{Frame: 10 * time.Millisecond, Application: opus.LowDelay}, 880},
		{"96k 20ms 880Hz", opus.Options{Bitrate: 96_000}, 880},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const amp = 0.25
			out, sizes := roundTrip(t, tc.opt, func(start, n int) []int16 { return tone(tc.hz, amp, start, n) })
			steady := out[len(out)/2:] // past the encoder's ramp-up
			want := amp / math.Sqrt2
			at, other := goertzel(steady, tc.hz), goertzel(steady, tc.hz*1.5)
			if math.Abs(at-want) > want*0.1 {
				t.Errorf("level at %v Hz: %.4f, want %.4f ±10%%", tc.hz, at, want)
			}
			if other > want/100 {
				t.Errorf("level at %v Hz: %.4f, want under %.4f", tc.hz*1.5, other, want/100)
			}
			var bytes int
			for _, s := range sizes {
				bytes += s
			}
			t.Logf("%d packets, %d bytes (%.0f kbit/s); level %.4f at %v Hz", len(sizes), bytes, float64(bytes)*8/1000, at, tc.hz)
		})
	}
}

func TestSilenceDTX(t *testing.T) {
	skipUnavailable(t)
	for _, tc := range []struct {
		name    string
		opt     opus.Options
		maxTiny int // the most bytes of a DTX packet
	}{
		{"dtx", opus.Options{}, 2},
		{"dtx 10ms", opus.Options{Frame: 10 * time.Millisecond}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, sizes := roundTrip(t, tc.opt, func(_, n int) []int16 { return make([]int16, n*opus.Channels) })
			tiny := 0
			for _, s := range sizes[len(sizes)/2:] {
				if s <= tc.maxTiny {
					tiny++
				}
			}
			// libopus still sends a real packet every 400 ms under DTX.
			if tiny < len(sizes)/2-3 {
				t.Errorf("second half of a second of silence: %d of %d packets ≤ %d bytes (sizes %v)", tiny, len(sizes)/2, tc.maxTiny, sizes)
			}
			if r := rms(out); r > 1e-3 {
				t.Errorf("silence decodes at RMS %.5f", r)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	skipUnavailable(t)
	for _, tc := range []struct {
		name string
		opt  opus.Options
		ok   bool
	}{
		{"defaults", opus.Options{}, true},
		{"96k lowdelay", opus.Options{Bitrate: 96_000, Application: opus.LowDelay}, true},
		{"adaptive at 20% loss", opus.Options{Application: opus.Adaptive, LossPercent: 20}, true},
		{"no fec no dtx", opus.Options{LossPercent: -1, NoDTX: true}, true},
		{"bitrate too low", opus.Options{Bitrate: 1000}, false},
		{"bitrate too high", opus.Options{Bitrate: 1_000_000}, false},
		{"5 ms frame", opus.Options{Frame: 5 * time.Millisecond}, false},
		{"loss over 100", opus.Options{LossPercent: 101}, false},
		{"unknown application", opus.Options{Application: 7}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := opus.New(tc.opt)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if e != nil {
				if _, err := e.Encode(make([]int16, 7)); err == nil {
					t.Error("Encode of 7 samples: no error")
				}
				_ = e.Close()
				_ = e.Close()
				if _, err := e.Encode(make([]int16, e.FrameSamples()*2)); err == nil {
					t.Error("Encode after Close: no error")
				}
			}
		})
	}
}

func TestUnavailableError(t *testing.T) {
	if err := opus.Available(); err != nil && !errors.Is(err, opus.ErrUnavailable) {
		t.Fatalf("Available: %v", err)
	}
}

// BenchmarkEncode is the CPU one listener-independent stage costs: one
// frame of a 440 Hz tone (50 or 100 of them a second).
func BenchmarkEncode(b *testing.B) {
	skipUnavailable(b)
	for _, tc := range []struct {
		name string
		opt  opus.Options
	}{
		{"audio-20ms", opus.Options{}},
		{"audio-10ms", opus.Options{Frame: 10 * time.Millisecond}},
		{"lowdelay-10ms", opus.Options{Frame: 10 * time.Millisecond, Application: opus.LowDelay}},
		{"audio-10ms-complexity-7", opus.Options{Frame: 10 * time.Millisecond, Complexity: 7}},
		{"audio-10ms-complexity-5", opus.Options{Frame: 10 * time.Millisecond, Complexity: 5}},
		{"audio-10ms-complexity-3", opus.Options{Frame: 10 * time.Millisecond, Complexity: 3}},
		{"lowdelay-10ms-complexity-5", opus.Options{Frame: 10 * time.Millisecond, Application: opus.LowDelay, Complexity: 5}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := opus.New(tc.opt)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			n := e.FrameSamples()
			pcm := tone(440, 0.25, 0, n)
			for b.Loop() {
				if _, err := e.Encode(pcm); err != nil {
					b.Fatal(err)
				}
			}
			perSec := float64(opus.Rate) / float64(n)
			b.ReportMetric(perSec*float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e9*100, "%core")
		})
	}
}

// TestPacketLoss: with no loss reported music stays in CELT (TOC configs
// 16–31), which costs less and suits it; once listeners report enough loss
// the encoder moves to the hybrid mode, whose SILK layer carries the
// in-band FEC (configs 12–15), and back when the loss goes.
func TestPacketLoss(t *testing.T) {
	skipUnavailable(t)
	e, err := opus.New(opus.Options{Frame: 10 * time.Millisecond, Complexity: 5, NoDTX: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	n := e.FrameSamples()
	i := 0
	for _, tc := range []struct {
		loss     int
		min, max byte // TOC configurations
	}{{0, 16, 31}, {20, 12, 15}, {3, 16, 31}, {150, 12, 15}, {-5, 16, 31}} {
		if err := e.SetPacketLoss(tc.loss); err != nil {
			t.Fatalf("SetPacketLoss(%d): %v", tc.loss, err)
		}
		var configs []byte
		for range 30 {
			p, err := e.Encode(tone(440, 0.3, i*n, n))
			if err != nil {
				t.Fatal(err)
			}
			i++
			configs = append(configs, p[0]>>3)
		}
		// The last 10: a mode change may take a few frames.
		for _, c := range configs[20:] {
			if c < tc.min || c > tc.max {
				t.Errorf("loss %d%%: TOC configurations %v, want %d to %d", tc.loss, configs, tc.min, tc.max)
				break
			}
		}
	}
	_ = e.Close()
	if err := e.SetPacketLoss(1); err == nil {
		t.Error("SetPacketLoss after Close: no error")
	}
}

// onsetDelay encodes 100 ms of silence, then a 440 Hz tone, with e and
// decodes it: the samples between the tone's start and the first loud one
// decoded are the encoder's look-ahead.
func onsetDelay(t *testing.T, e *opus.Encoder) int {
	t.Helper()
	d := newDecoder(t)
	n := e.FrameSamples()
	var out []int16
	for i := range 20 {
		pcm := make([]int16, n*opus.Channels)
		if i >= 10 {
			pcm = tone(440, 0.5, (i-10)*n, n)
		}
		p, err := e.Encode(pcm)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := d.Decode(p, n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dec...)
	}
	for i := 0; i < len(out); i += 2 {
		if out[i] > 3000 || out[i] < -3000 {
			return i/2 - 10*n
		}
	}
	t.Fatal("the tone never came out")
	return 0
}

// TestAdaptive: an Adaptive encoder codes with LowDelay's 2.5 ms of
// look-ahead while no loss is reported (AUDIO's is 6.5 ms), moves to the
// hybrid mode with FEC once loss passes 8%, and back under 4%; the tone
// goes on through both switches.
func TestAdaptive(t *testing.T) {
	skipUnavailable(t)
	for _, tc := range []struct {
		app      opus.Application
		min, max int // look-ahead, samples at 48 kHz
	}{{opus.Adaptive, 100, 140}, {opus.LowDelay, 100, 140}, {opus.Audio, 290, 330}} {
		e, err := opus.New(opus.Options{Frame: 10 * time.Millisecond, Application: tc.app, Complexity: 5, NoDTX: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := onsetDelay(t, e); got < tc.min || got > tc.max {
			t.Errorf("application %d: look-ahead %d samples, want %d to %d", tc.app, got, tc.min, tc.max)
		}
		_ = e.Close()
	}

	e, err := opus.New(opus.Options{Frame: 10 * time.Millisecond, Application: opus.Adaptive, Complexity: 5, NoDTX: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := newDecoder(t)
	n, i := e.FrameSamples(), 0
	for _, tc := range []struct {
		loss     int
		min, max byte // TOC configurations
	}{{0, 16, 31}, {8, 16, 31}, {9, 12, 15}, {5, 12, 15}, {3, 16, 31}} {
		if err := e.SetPacketLoss(tc.loss); err != nil {
			t.Fatal(err)
		}
		var configs []byte
		var pcm []int16
		for range 30 {
			p, err := e.Encode(tone(440, 0.3, i*n, n))
			if err != nil {
				t.Fatal(err)
			}
			i++
			configs = append(configs, p[0]>>3)
			dec, err := d.Decode(p, n)
			if err != nil {
				t.Fatal(err)
			}
			pcm = append(pcm, dec...)
		}
		for _, c := range configs[20:] {
			if c < tc.min || c > tc.max {
				t.Errorf("loss %d%%: TOC configurations %v, want %d to %d", tc.loss, configs, tc.min, tc.max)
				break
			}
		}
		// Every 10 ms of the 300 decoded holds the tone: no gap at a switch.
		for f := 0; f < len(pcm); f += n * 2 {
			if g := goertzel(pcm[f:f+n*2], 440); g < 0.1 {
				t.Errorf("loss %d%%: frame %d decodes at 440 Hz level %.3f, want the tone (0.21)", tc.loss, f/(n*2), g)
			}
		}
	}
}
