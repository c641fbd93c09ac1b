package rtc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/rtc"
)

// idleTrack is a track that never sends: enough for the offer handling.
type idleTrack struct{ *fanout.Hub[*media.Frame] }

func (idleTrack) RequestKeyframe() {}
func (idleTrack) SetBitrate(int)   {}

// FuzzWHEPOffer feeds Offer arbitrary offers: it must not panic, must call
// release exactly once per offer, and must leave no session behind.
func FuzzWHEPOffer(f *testing.F) {
	c, offer, err := whepclient.New(whepclient.Options{})
	if err != nil {
		f.Fatal(err)
	}
	_ = c.Close()
	f.Add(offer)
	f.Add("")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n")
	hub := fanout.New[*media.Frame](nil, fanout.Options[*media.Frame]{})
	defer hub.Close()
	srv, err := rtc.New(rtc.Config{Tracks: map[media.Codec]rtc.Track{media.H264: idleTrack{hub}}, Loopback: true})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	f.Fuzz(func(t *testing.T, offer string) {
		released := 0
		hung := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Offer hangs on %q", offer)) })
		defer hung.Stop()
		_, id, err := srv.Offer(context.Background(), offer, rtc.Viewer{}, func() { released++ })
		if err == nil {
			if err := srv.End(id); err != nil {
				t.Fatal(err)
			}
		}
		if released != 1 {
			t.Fatalf("release called %d times", released)
		}
		if n := srv.Sessions(); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
	})
}
