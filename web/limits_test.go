package web_test

import (
	"net/http"
	"testing"

	"github.com/deskcast/deskcast/web"
)

// TestStreamsPerViewer: one viewer (one cookie) cannot open streams without
// end; the limit is per viewer, so another still gets in.
func TestStreamsPerViewer(t *testing.T) {
	fd := newFeed()
	fd.First = repeat(jpegFrame(t, 16, 16, 128))
	ts := startServer(t, web.Config{}, fd)
	cookie := ts.sessionCookie(t)
	ctx := timeout(t)
	for i := range 8 {
		resp := ts.get(t, ctx, "/stream.mjpg", cookie)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d", i+1, resp.StatusCode)
		}
	}
	resp := ts.get(t, ctx, "/stream.mjpg", cookie)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("9th stream of one viewer: status %d, want 429", resp.StatusCode)
	}
	other := ts.get(t, ctx, "/stream.mjpg?t="+token)
	defer other.Body.Close()
	if other.StatusCode != http.StatusOK {
		t.Fatalf("another viewer: status %d, want 200", other.StatusCode)
	}
}
