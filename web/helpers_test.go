package web_test

import (
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/internal/testenv"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/web"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

var errBoom = errors.New("boom")

// feed is the synthetic screen of these tests.
type feed = testenv.Feed[*media.Frame]

func newFeed() *feed { return testenv.NewFeed[*media.Frame]() }

// newVideoHub is the MJPEG handler's hub over src, as the engine makes it:
// one slot where the newest frame wins, the newest replayed to a joiner,
// each frame prepared by MJPEGPrepare. It closes when the test ends.
func newVideoHub(t *testing.T, src fanout.Source[*media.Frame]) *fanout.Hub[*media.Frame] {
	t.Helper()
	h := fanout.New(src, fanout.Options[*media.Frame]{Logger: quiet, Replay: true, Prepare: web.MJPEGPrepare})
	t.Cleanup(h.Close)
	return h
}

// subscribe adds a subscriber to b that leaves when the test ends.
func subscribe(t *testing.T, b *fanout.Hub[*media.Frame], id string) *fanout.Subscriber[*media.Frame] {
	t.Helper()
	s, err := b.Subscribe(fanout.SubscriberInfo{ID: id})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", id, err)
	}
	t.Cleanup(s.Close)
	return s
}
