package rtc

import (
	"strings"
	"testing"

	"github.com/deskcast/deskcast/media"
)

// TestChooseCodecOrder: the server's preference decides, not the offer's
// order (Chromium lists VP8 before H.264).
func TestChooseCodecOrder(t *testing.T) {
	offer := func(formats string, lines ...string) string {
		return strings.Join(append([]string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
			"m=video 9 UDP/TLS/RTP/SAVPF " + formats, "c=IN IP4 0.0.0.0", "a=recvonly"}, lines...), "\r\n") + "\r\n"
	}
	vp8 := "a=rtpmap:96 VP8/90000"
	h264 := "a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	both := map[media.Codec]Track{media.H264: nil, media.VP8: nil}
	cases := []struct {
		name   string
		offer  string
		tracks map[media.Codec]Track
		want   media.Codec
	}{
		{"VP8 listed first", offer("96 102", vp8, h264), both, media.H264},
		{"H.264 listed first", offer("102 96", h264, vp8), both, media.H264},
		{"VP8 only (Firefox ESR)", offer("96", vp8), both, media.VP8},
		{"no VP8 track", offer("96 102", vp8, h264), map[media.Codec]Track{media.H264: nil}, media.H264},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseCodec(tc.offer, tc.tracks)
			if err != nil || got != tc.want {
				t.Fatalf("chooseCodec = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
