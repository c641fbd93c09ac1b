package access

import "errors"

// Mode says what is shared.
type Mode string

// The modes, as --mode and /api/status spell them.
const (
	ModeScreenAudio Mode = "screen+audio"
	ModeScreen      Mode = "screen"
	ModeAudio       Mode = "audio"
)

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeScreenAudio, ModeScreen, ModeAudio:
		return m, nil
	}
	return "", errors.New(`mode: want "screen+audio", "screen" or "audio"`)
}

// Video reports whether m shares the screen.
func (m Mode) Video() bool { return m != ModeAudio }

// Audio reports whether m shares the sound.
func (m Mode) Audio() bool { return m != ModeScreen }
