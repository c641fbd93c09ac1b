package rtc_test

import (
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/deskcast/deskcast/internal/whepclient"
)

type webrtcCodec = webrtc.RTPCodecParameters

var vp8 = webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}

// whepOffer is a client's offer, the client closed at once.
func whepOffer(t *testing.T, opt whepclient.Options) string {
	t.Helper()
	c, offer, err := whepclient.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	return offer
}
