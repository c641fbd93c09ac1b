package web_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/web"
)

// TestMetrics reads /metrics as Prometheus would: it parses with the
// Prometheus text parser, has the share's figures and, while publishing,
// the publishing state; and it is the presenter's only.
func TestMetrics(t *testing.T) {
	ts, _, _ := pinServer(t, access.Access{}, nil)
	get := func(t *testing.T, target string) (*http.Response, []byte) {
		t.Helper()
		resp := ts.do(t, timeout(t), http.MethodGet, target)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, body
	}
	parse := func(t *testing.T, body []byte) map[string]*dto.MetricFamily {
		t.Helper()
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("the Prometheus parser: %v\n%s", err, body)
		}
		return fams
	}
	value := func(t *testing.T, fams map[string]*dto.MetricFamily, name, labelValue string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.Metric {
			if labelValue != "" && (len(m.Label) == 0 || m.Label[0].GetValue() != labelValue) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			}
		}
		t.Fatalf("no %s{%q}", name, labelValue)
		return 0
	}

	resp, body := get(t, "/metrics?t="+token)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fams := parse(t, body)
	if v := value(t, fams, "deskcast_state", "sharing"); v != 1 {
		t.Errorf("deskcast_state{sharing} = %v", v)
	}
	if v := value(t, fams, "deskcast_viewers", "webrtc"); v != 0 {
		t.Errorf("deskcast_viewers{webrtc} = %v", v)
	}
	for _, name := range []string{"deskcast_fps", "deskcast_frames_total", "deskcast_frames_dropped_total", "deskcast_grab_seconds",
		"deskcast_encode_seconds", "deskcast_sound_dropped_total", "deskcast_build_info"} {
		value(t, fams, name, "")
	}
	if _, ok := fams["deskcast_publish_state"]; ok {
		t.Error("publishing metrics while not publishing")
	}

	ts.srv.SetPublish(func() web.PublishStatus {
		return web.PublishStatus{State: "live", URL: "http://mtx:8889/deskcast/whip", Since: time.Now(), Attempts: 2,
			Bitrate: 1_500_000, FPS: 29.5, RTTMs: 4, Frames: 100, Bytes: 200_000}
	})
	_, body = get(t, "/metrics?t="+token)
	fams = parse(t, body)
	for _, tc := range []struct {
		name, label string
		want        float64
	}{
		{"deskcast_publish_state", "live", 1}, {"deskcast_publish_state", "reconnecting", 0},
		{"deskcast_publish_bitrate_bits", "", 1_500_000}, {"deskcast_publish_rtt_seconds", "", 0.004},
		{"deskcast_publish_attempts_total", "", 2}, {"deskcast_publish_sent_bytes_total", "", 200_000},
	} {
		if v := value(t, fams, tc.name, tc.label); v != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.label, v, tc.want)
		}
	}

	for _, target := range []string{"/metrics", "/metrics?t=" + wrongToken} {
		if resp, body := get(t, target); resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("deskcast_")) {
			t.Errorf("%s: status %d, want 403 and no figures", target, resp.StatusCode)
		}
	}
}
