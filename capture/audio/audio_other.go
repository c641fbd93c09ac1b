//go:build !linux

package audio

import "github.com/deskcast/deskcast/media"

func pulseSources() ([]Device, error) { return nil, nil }
func quietStderr(f func())            { f() }

func (a *Source) open(deliver func(*media.AudioChunk)) (stream, error) {
	return a.openPortaudio(deliver)
}
