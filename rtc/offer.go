package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/pion/logging"
	"github.com/pion/sdp/v3"

	"github.com/deskcast/deskcast/media"
)

// errNoVideo is chooseCodec's error for an offer without a video section
// that receives: a session with sound alone may still do.
var errNoVideo = errors.New("the offer receives no video: add a recvonly video transceiver")

// offersOpus reports whether offer has an audio section that receives Opus.
func offersOpus(offer string) bool {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, ok := m.Attribute("sendonly"); ok {
			continue
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			_, rest, _ := strings.Cut(a.Value, " ")
			if name, _, _ := strings.Cut(rest, "/"); strings.EqualFold(name, "opus") {
				return true
			}
		}
	}
	return false
}

// chooseCodec picks the codec to send a viewer: of those its offer's video
// section has and the server has a track for, the first in the server's
// order of preference (knownCodecs: H.264, then VP8). Its errors say what is wrong with the offer, for the viewer.
func chooseCodec(offer string, tracks map[media.Codec]Track) (media.Codec, error) {
	if strings.TrimSpace(offer) == "" {
		return "", errors.New("empty offer: send an SDP offer")
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return "", fmt.Errorf("not an SDP offer: %w", err)
	}
	var offered []string
	acceptable := map[media.Codec]bool{}
	video := false
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, ok := m.Attribute("sendonly"); ok {
			continue // the viewer would send, not receive
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		video = true
		rtpmap, fmtp := map[string]string{}, map[string]string{}
		for _, a := range m.Attributes {
			pt, rest, _ := strings.Cut(a.Value, " ")
			switch a.Key {
			case "rtpmap":
				name, _, _ := strings.Cut(rest, "/")
				rtpmap[pt] = strings.ToLower(name)
			case "fmtp":
				fmtp[pt] = rest
			}
		}
		for _, pt := range m.MediaName.Formats {
			name := rtpmap[pt]
			if name == "" || name == "rtx" || name == "red" || name == "ulpfec" || name == "flexfec-03" {
				continue
			}
			if !slices.Contains(offered, name) {
				offered = append(offered, name)
			}
			c := media.Codec(name)
			if _, ok := tracks[c]; !ok {
				continue
			}
			if c == media.H264 && (fmtpValue(fmtp[pt], "packetization-mode") != "1" || !constrainedBaseline(fmtpValue(fmtp[pt], "profile-level-id"))) {
				continue
			}
			acceptable[c] = true
		}
	}
	// Ours is the choice among what both sides can do, not the browser's
	// order: Chromium lists VP8 first, and H.264 is what phones decode in
	// hardware.
	for _, k := range knownCodecs {
		if acceptable[k.codec] {
			return k.codec, nil
		}
	}
	if !video {
		return "", errNoVideo
	}
	var have []string
	for c := range tracks {
		have = append(have, string(c))
	}
	slices.Sort(have)
	return "", fmt.Errorf("no codec in common: the offer has %s; this server sends %s (H.264 as Constrained Baseline, packetization-mode=1)",
		orNone(offered), strings.Join(have, ", "))
}

// constrainedBaseline reports whether a profile-level-id is one that pion
// matches to the registered H.264 codecs (profile and constraints 42e0, 42c0 or 4200).
func constrainedBaseline(plid string) bool {
	if len(plid) != 6 {
		return false
	}
	p := strings.ToLower(plid[:4])
	return p == "42e0" || p == "42c0" || p == "4200"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no codec"
	}
	return strings.Join(s, ", ")
}

// pionLogs sends pion's logs to slog. Pion is chatty: its errors become
// warnings, its warnings and everything else debug messages.
type pionLogs struct{ log *slog.Logger }

func (f *pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(msg string)      { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
func (l pionLogger) Info(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pionLogger) Warn(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Warnf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pionLogger) Error(msg string)                 { l.log.Warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...))
}

// fmtpValue returns key's value in an a=fmtp parameter list ("a=1;b=2").
func fmtpValue(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
