package web

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// handleMetrics serves /metrics in Prometheus's text format (version
// 0.0.4), for the presenter's monitoring: what /api/status says, as numbers.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.writeMetrics(w)
}

// metricWriter writes metric families: each its help, type and samples.
type metricWriter struct{ w io.Writer }

type sample struct {
	labels string // `name="value",…` or ""
	value  float64
}

func (m metricWriter) family(name, typ, help string, samples ...sample) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	for _, s := range samples {
		if s.labels != "" {
			fmt.Fprintf(m.w, "%s{%s} %g\n", name, s.labels, s.value)
		} else {
			fmt.Fprintf(m.w, "%s %g\n", name, s.value)
		}
	}
}

func one(v float64) sample { return sample{value: v} }

// label is name="value" with the value escaped as the text format wants.
func label(name, value string) string {
	return name + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(value) + `"`
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *Server) writeMetrics(w io.Writer) {
	st := s.Status()
	m := metricWriter{w}
	m.family("deskcast_build_info", "gauge", "This build: its version and commit.", sample{label("version", st.Version), 1})
	var states []sample
	for _, k := range []string{"sharing", "paused", "error"} {
		states = append(states, sample{label("state", k), b2f(st.State == k)})
	}
	m.family("deskcast_state", "gauge", "The share's state: 1 for the one it is in.", states...)
	m.family("deskcast_uptime_seconds", "gauge", "Since the share started.", one(float64(st.UptimeS)))
	webrtc, webrtcBytes := 0, uint64(0)
	if w := s.webrtc.Load(); w != nil && w.whep != nil {
		webrtc, webrtcBytes = w.whep.Sessions(), w.whep.SentBytes()
	}
	m.family("deskcast_viewers", "gauge", "Viewers watching now, by transport (MJPEG includes players and snapshots' streams).",
		sample{label("transport", "mjpeg"), float64(st.Viewers - webrtc)}, sample{label("transport", "webrtc"), float64(webrtc)})
	m.family("deskcast_capturing", "gauge", "1 while the screen is being captured (somebody watches).", one(b2f(st.Capturing)))
	m.family("deskcast_fps", "gauge", "Pictures a second over the last second.", one(float64(st.FPS)))
	m.family("deskcast_frames_total", "counter", "Pictures encoded for MJPEG viewers.", one(float64(st.Frames)))
	m.family("deskcast_frames_dropped_total", "counter", "Pictures MJPEG viewers were too slow to take.", one(float64(st.FramesDropped)))
	m.family("deskcast_mjpeg_sent_bytes_total", "counter", "Bytes sent to MJPEG viewers.", one(float64(st.BytesSent)))
	m.family("deskcast_webrtc_sent_bytes_total", "counter", "Media bytes (RTP payloads) sent to WebRTC viewers.", one(float64(webrtcBytes)))
	m.family("deskcast_grab_seconds", "gauge", "The newest picture's grab time.", one(st.GrabMS/1000))
	m.family("deskcast_encode_seconds", "gauge", "The newest picture's encode time.", one(st.EncodeMS/1000))
	m.family("deskcast_frame_age_seconds", "gauge", "Since the newest picture was captured.", one(st.FrameAgeMS/1000))
	a := st.Audio
	m.family("deskcast_sound_on", "gauge", "1 while sound is captured and sent.", one(b2f(a.State == "on")))
	m.family("deskcast_sound_listeners", "gauge", "Listeners of the captured sound (the WebRTC sound's encoder counts as one).", one(float64(a.Listeners)))
	m.family("deskcast_sound_chunks_total", "counter", "Sound chunks captured (10 ms each).", one(float64(a.Chunks)))
	m.family("deskcast_sound_dropped_total", "counter", "Sound chunks listeners were too slow to take.", one(float64(a.Dropped)))
	if p := s.Publishing(); p != nil {
		var ps []sample
		for _, k := range []string{"connecting", "live", "reconnecting", "stopped"} {
			ps = append(ps, sample{label("state", k), b2f(p.State == k)})
		}
		m.family("deskcast_publish_state", "gauge", "Publishing to the media server: 1 for the state it is in.", ps...)
		m.family("deskcast_publish_attempts_total", "counter", "WHIP sessions tried.", one(float64(p.Attempts)))
		m.family("deskcast_publish_bitrate_bits", "gauge", "Sent to the media server over the last second, bit/s.", one(float64(p.Bitrate)))
		m.family("deskcast_publish_fps", "gauge", "Pictures a second sent to the media server.", one(p.FPS))
		m.family("deskcast_publish_rtt_seconds", "gauge", "Round trip to the media server, from its receiver reports.", one(p.RTTMs/1000))
		m.family("deskcast_publish_frames_total", "counter", "Pictures sent to the media server.", one(float64(p.Frames)))
		m.family("deskcast_publish_sent_bytes_total", "counter", "Bytes of pictures sent to the media server.", one(float64(p.Bytes)))
	}
}
