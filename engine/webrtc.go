package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/codec/opus"
	"github.com/deskcast/deskcast/codec/vp8"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
	"github.com/deskcast/deskcast/rtc"
	"github.com/deskcast/deskcast/web"
)

// Keyframes and joins on the WebRTC tracks. A 1080p keyframe is 100–300 KB
// sent to every viewer at once, so a viewer who joins starts from the kept
// group of pictures instead (its reference frames, sent to the joiner
// alone), as long as joiners are replayed at most replayBudget a second: many
// joining at once share one keyframe. Keyframes asked for by viewers (a lost
// packet, a queue overflow) are made at most once a second.
const (
	videoQueue    = 60          // frames a viewer may fall behind before it restarts at a keyframe
	gopFrames     = 600         // a group of pictures kept for joiners: 20 s at 30 fps...
	gopBytes      = 2 << 20     // ...and 2 MB, 0.17 s of a 100 Mbit/s link for the joiner alone
	replayBudget  = 2 << 20     // bytes a second replayed to joiners: a sixth of a 100 Mbit/s link
	keyframeEvery = time.Second // the least time between keyframes made on request
)

// h264Track is the WebRTC viewers' encoding: H.264 delivered in order from a
// keyframe; its encoder runs only while a WebRTC viewer watches. Two temporal
// layers make every other frame droppable, so a viewer on a slow link is
// sent half the frames rather than falling behind.
func h264Track(fps int) pipeline.TrackOptions {
	return pipeline.TrackOptions{
		Name: "h264",
		Encoder: func() (media.Encoder, error) {
			return h264.New(h264.Options{FPS: min(max(fps, 1), 60), TemporalLayers: 2})
		},
		Delivery: pipeline.FromKeyframe,
		Queue:    videoQueue, GOP: gopFrames, GOPBytes: gopBytes, ReplayBudget: replayBudget, KeyframeEvery: keyframeEvery,
	}
}

// vp8Track is the encoding for browsers without H.264 (Firefox without its
// OpenH264 plugin): VP8 in order from a keyframe, run only while such a
// viewer watches.
func vp8Track(fps int) pipeline.TrackOptions {
	return pipeline.TrackOptions{
		Name: "vp8",
		Encoder: func() (media.Encoder, error) {
			return vp8.New(vp8.Options{FPS: min(max(fps, 1), 60), TemporalLayers: 2})
		},
		Delivery: pipeline.FromKeyframe,
		Queue:    videoQueue, GOP: gopFrames, GOPBytes: gopBytes, ReplayBudget: replayBudget, KeyframeEvery: keyframeEvery,
	}
}

// Sound over WebRTC: Opus at 128 kbit/s (music as well as voice), in
// frames of opusFrame, queued up to opusQueue packets per listener.
//
// 10 ms frames rather than 20: the bench measured the sink-to-page delay
// 85 ms against 99 (the page waits for a whole frame, and Chromium's jitter
// buffer holds fewer milliseconds of smaller packets). Complexity 5 rather
// than libopus's 10 halves the encoder's time (70 µs a frame against 163,
// BenchmarkEncode), which at 100 frames a second matters more than the
// quality it buys at 128 kbit/s. Adaptive: CELT alone with 2.5 ms of
// look-ahead on a clean network, the hybrid mode with in-band FEC (6.5 ms)
// once listeners report enough loss (rtc's receiver reports, the worst
// listener's). The encoder's DTX is off: libopus took a steady tone for
// inactivity after half a second and sent comfort noise instead; the track
// leaves out digital silence itself (pipeline.AudioTrack).
const (
	opusBitrate    = 128_000
	opusFrame      = 10 * time.Millisecond
	opusComplexity = 5
	opusQueue      = 20 // 200 ms: a listener further behind loses the oldest
)

// opusTrack is the WebRTC listeners' sound, encoded from the share's sound
// hub once for all of them while any listens. Nil without libopus: WebRTC
// viewers then get the picture alone and the page plays /ws/audio.
func (e *Engine) opusTrack(sh *share) *pipeline.AudioTrack {
	if err := opus.Available(); err != nil {
		e.log.Info("no sound over WebRTC", "why", err)
		return nil
	}
	return pipeline.NewAudioTrack(sh.audio, pipeline.AudioTrackOptions{
		Codec: media.Opus, Rate: opus.Rate, Channels: opus.Channels, Queue: opusQueue, Logger: e.log, OnChange: e.changed,
		Encoder: func() (pipeline.AudioEncoder, error) {
			return opus.New(opus.Options{Bitrate: opusBitrate, Frame: opusFrame, Complexity: opusComplexity, Application: opus.Adaptive, NoDTX: true})
		},
	})
}

// startWebRTC adds the tracks (H.264, and VP8 where libvpx is built in) and
// the WebRTC server behind srv's WHEP routes, on srv's port (UDP, and
// ICE-TCP off its listener). Each viewer gets the first of them its browser
// offers. Without OpenH264, or when the UDP port is taken, WebRTC stays off
// and the status says why; the share goes on over MJPEG.
func (e *Engine) startWebRTC(sh *share) {
	if err := h264.Available(); err != nil {
		sh.srv.SetWebRTCUnavailable(err.Error())
		e.log.Info("WebRTC off", "why", err)
		return
	}
	track := sh.pipe.Track(h264Track(e.settings.FPS))
	tracks := map[media.Codec]rtc.Track{media.H264: track}
	codecs, hubs := []string{string(media.H264)}, []*fanout.Hub[*media.Frame]{track.Hub}
	if err := vp8.Available(); err == nil {
		sh.vp8 = sh.pipe.Track(vp8Track(e.settings.FPS))
		tracks[media.VP8] = sh.vp8
		codecs, hubs = append(codecs, string(media.VP8)), append(hubs, sh.vp8.Hub)
	} else {
		e.log.Info("no VP8 for browsers without H.264", "why", err)
	}
	cfg := rtc.Config{Tracks: tracks, UDPPort: sh.srv.Port(), TCP: sh.srv.ICETCP(), Logger: e.log}
	if sh.opus = e.opusTrack(sh); sh.opus != nil {
		cfg.Audio = sh.opus
	}
	r, err := rtc.New(cfg)
	if err != nil {
		if sh.opus != nil {
			sh.opus.Close()
			sh.opus = nil
		}
		sh.srv.SetWebRTCUnavailable(err.Error())
		e.log.Warn("WebRTC off", "why", err)
		return
	}
	sh.h264, sh.rtc = track, r
	sh.srv.SetWebRTC(whep{r}, codecs, hubs...)
	if sh.opus != nil {
		sh.srv.SetWebRTCAudio(string(media.Opus))
	}
}

// whep is the rtc server as web sees it: rtc's errors told in web's words.
type whep struct{ *rtc.Server }

func (w whep) Offer(ctx context.Context, offer string, v fanout.SubscriberInfo, release func()) (string, string, error) {
	answer, id, err := w.Server.Offer(ctx, offer, v, release)
	if errors.Is(err, rtc.ErrBadOffer) {
		err = fmt.Errorf("%w: %w", web.ErrBadOffer, err)
	}
	return answer, id, err
}

func (w whep) End(id string) error {
	err := w.Server.End(id)
	if errors.Is(err, rtc.ErrNoSession) {
		err = fmt.Errorf("%w: %w", web.ErrNoSession, err)
	}
	return err
}

// startPublish publishes the share to the media server the settings name
// (WHIP, from the same encode as the LAN's viewers), when WebRTC is on.
func (e *Engine) startPublish(sh *share) {
	p := e.settings.Publish
	if p.URL == "" {
		return
	}
	if sh.rtc == nil {
		sh.srv.SetPublish(func() web.PublishStatus {
			return web.PublishStatus{State: rtc.PublishStopped, URL: p.URL, View: p.View, Error: "WebRTC is off here, so nothing can be published"}
		})
		return
	}
	pub, err := sh.rtc.Publish(rtc.PublishOptions{URL: p.URL, Token: p.Token, OnChange: e.changed})
	if err != nil {
		sh.srv.SetPublish(func() web.PublishStatus {
			return web.PublishStatus{State: rtc.PublishStopped, URL: p.URL, View: p.View, Error: err.Error()}
		})
		return
	}
	sh.pub = pub
	sh.srv.SetPublish(func() web.PublishStatus {
		st := pub.Status()
		return web.PublishStatus{State: st.State, URL: st.URL, View: p.View, Error: st.Error, Since: st.Since, Attempts: st.Attempts,
			Bitrate: st.Bitrate, FPS: st.FPS, RTTMs: st.RTTMs, Frames: st.Frames, Bytes: st.Bytes,
			AudioPackets: st.AudioPackets, AudioDropped: st.AudioDropped, ICEServers: st.ICEServers, Candidate: st.Candidate}
	})
}
