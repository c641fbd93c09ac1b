package rtc

import "testing"

// The sound's loss rises to a report at once and falls a quarter of the way
// per report, so that FEC comes at the first bad report and does not flap.
func TestNoteAudioLoss(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reports []uint8 // FractionLost, of 256
		want    int32
	}{
		{"none", nil, 0},
		{"clean", []uint8{0, 0, 0}, 0},
		{"a bad second", []uint8{0, 64}, 25},
		{"after it", []uint8{64, 0}, 18},
		{"after it, twice", []uint8{64, 0, 0}, 13},
		{"long after", []uint8{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0},
		{"worse", []uint8{26, 128}, 50},
		{"less bad", []uint8{128, 26}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x session
			for _, r := range tc.reports {
				x.noteAudioLoss(r)
			}
			if got := x.audioLoss.Load(); got != tc.want {
				t.Errorf("loss after %v: %d%%, want %d%%", tc.reports, got, tc.want)
			}
		})
	}
}
