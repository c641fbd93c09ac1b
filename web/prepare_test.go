package web_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

// TestMJPEGPrepare: the published frame is a numbered copy whose Wire is the
// JPEG and the next part's header, and whose Data is the front of Wire (one
// copy of the bytes); the emitted frame is left as it was.
func TestMJPEGPrepare(t *testing.T) {
	jpg := []byte{0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9}
	f := &media.Frame{Codec: media.JPEG, Data: jpg, Keyframe: true, Width: 4, Height: 2}
	p := web.MJPEGPrepare(f, 7)
	if p == f || f.Seq != 0 || f.Wire != nil || &f.Data[0] != &jpg[0] {
		t.Fatalf("MJPEGPrepare changed the emitted frame: %+v", f)
	}
	if p.Seq != 7 || p.Width != 4 || p.Height != 2 || p.Codec != media.JPEG || !p.Keyframe {
		t.Errorf("published frame %+v, want the emitted one numbered 7", p)
	}
	want := append(append([]byte{}, jpg...), "\r\n--deskcastframe\r\nContent-Type: image/jpeg\r\n\r\n"...)
	if !bytes.Equal(p.Wire, want) {
		t.Errorf("Wire = %q, want %q", p.Wire, want)
	}
	if !bytes.Equal(p.Data, jpg) || &p.Data[0] != &p.Wire[0] || cap(p.Data) != len(jpg) {
		t.Errorf("Data is not the JPEG at the front of Wire, capped to its length (len %d cap %d)", len(p.Data), cap(p.Data))
	}
	if &p.Data[0] == &jpg[0] {
		t.Error("Data still points at the emitted bytes, which the source may reuse")
	}
}

// TestAudioPrepare: the published chunk is a numbered copy with its samples
// as signed 16-bit little-endian bytes; the emitted chunk is left as it was.
func TestAudioPrepare(t *testing.T) {
	pcm := []int16{0, 1, -1, math.MaxInt16, math.MinInt16}
	c := &media.AudioChunk{PCM: pcm, Rate: 48000, Channels: 1}
	p := web.AudioPrepare(c, 3)
	if p == c || c.Seq != 0 || c.Wire != nil {
		t.Fatalf("AudioPrepare changed the emitted chunk: %+v", c)
	}
	if p.Seq != 3 || p.Rate != 48000 || p.Channels != 1 || &p.PCM[0] != &pcm[0] {
		t.Errorf("published chunk %+v, want the emitted one numbered 3", p)
	}
	var want []byte
	for _, v := range pcm {
		want = binary.LittleEndian.AppendUint16(want, uint16(v))
	}
	if !bytes.Equal(p.Wire, want) {
		t.Errorf("Wire = % x, want % x", p.Wire, want)
	}
}
