package e2e

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"testing"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/codec/opus"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/internal/whepclient"
	"github.com/deskcast/deskcast/web"
)

// TestPublishToMediaMTX is publishing as a user does it: the real binary,
// started with --publish and --publish-token, sends the screen and the
// sound to a real MediaMTX with no LAN viewer at all; a reader of MediaMTX's
// WHEP endpoint decodes the painted colour, then the next one, and the
// 440 Hz tone; /api/status says live; stopping Deskcast ends the session on
// the server.
func TestPublishToMediaMTX(t *testing.T) {
	for _, err := range []error{h264.Available(), opus.Available()} {
		if err != nil {
			t.Skip(err)
		}
	}
	x := testenv.StartX(t, 640, 480)
	x.Fill(green)
	sink := testenv.NewSink(t)
	sink.Play(testenv.Tone(440, 0.5, 120*time.Second))
	mtx := testenv.MediaMTX(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := startHeadless(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--token", token, "--audio", sink.Name,
		"--publish", mtx.WHIPURL("deskcast"), "--publish-token", mtx.Token(), "--publish-view", mtx.RTSPURL("deskcast"))

	st := waitStatus(t, base, "publishing live", func(st web.Status) bool { return st.Publish != nil && st.Publish.State == "live" })
	if st.Publish.URL != mtx.WHIPURL("deskcast") || st.Publish.View != mtx.RTSPURL("deskcast") || st.Viewers != 0 {
		t.Errorf("status while publishing: %+v, %d viewers; want the WHIP URL, the view URL, no viewer", st.Publish, st.Viewers)
	}
	mtx.WaitPath("deskcast", "online with two tracks", 10*time.Second, func(p testenv.MediaMTXPath) bool {
		return p.Online && len(p.Tracks) == 2
	})

	ctx := context.Background()
	r, err := whepclient.Connect(ctx, mtx.WHEPURL("deskcast"), whepclient.Options{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec, err := h264.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	sees := func(what string, want func(image.Image) bool) {
		t.Helper()
		if !decodeUntil(r, dec, 15*time.Second, want) {
			t.Fatalf("the media server's reader never saw %s", what)
		}
	}
	sees("the green screen", func(img image.Image) bool { return near(img.At(320, 240), green) })
	x.Fill(blue)
	sees("the screen turn blue", func(img image.Image) bool { return near(img.At(320, 240), blue) })

	odec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer odec.Close()
	// A null sink just loaded passes its player's sound on after a start-up
	// of a couple of seconds, with a pause in it: listen until half a
	// second of the tone has come, in packets that follow each other.
	var mono []float64
	var prev uint32
	for deadline := time.After(15 * time.Second); ; {
		select {
		case p := <-r.Audio:
			pcm, err := odec.Decode(p.Data, 960)
			if err != nil {
				t.Fatal(err)
			}
			if prev != 0 && p.Timestamp-prev != uint32(len(pcm)/2) {
				mono = mono[:0] // a gap (left-out silence): start again
			}
			prev = p.Timestamp
			mono = append(mono, testenv.Mono(pcm, 2)...)
		case <-deadline:
			t.Fatalf("no half second of 440 Hz from the media server within 15 s (the last: %.3f)",
				testenv.Goertzel(mono[max(0, len(mono)-24000):], 48000, 440))
		}
		if len(mono) >= 24000 && math.Abs(testenv.Goertzel(mono[len(mono)-24000:], 48000, 440)-0.5) < 0.1 {
			break
		}
	}

	// Stopping Deskcast ends the session on the server (WHIP's DELETE).
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	mtx.WaitPath("deskcast", "offline after Deskcast was stopped", 10*time.Second, testenv.Offline)
}
