package rtc

import (
	"net/netip"
	"strings"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// maxICEServers bounds the ICE servers taken from one answer: each is a
// STUN query or a TURN allocation per local address when gathering.
const maxICEServers = 8

// parseICELinks returns the STUN and TURN servers that a WHIP server names
// in its Link headers (RFC 9725 §4.6, in RFC 8288's syntax), e.g.
//
//	Link: <stun:stun.example.net>; rel="ice-server"
//	Link: <turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="pass"; credential-type="password"
//
// Other links are left out, and so is any server pion could not use: a URL
// that is not a STUN or TURN URI with a plain host, a TURN server without
// a username and credential, a credential type other than "password". A
// header it cannot read is skipped from there to its end. At most
// maxICEServers are returned, in the order given.
func parseICELinks(headers []string) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, h := range headers {
		for _, l := range parseLinks(h) {
			if len(out) == maxICEServers {
				return out
			}
			if s, ok := iceServer(l); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// link is one link-value: its target and its parameters, names in lower
// case, the first of each name only (RFC 8288 §3.3 says so of rel).
type link struct {
	target string
	params map[string]string
}

// parseLinks reads the comma-separated link-values of one Link header
// (RFC 8288 §3), up to the first one it cannot read.
func parseLinks(h string) []link {
	var out []link
	s := h
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		if s[0] != '<' {
			return out
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return out
		}
		l := link{target: strings.TrimSpace(s[1:end]), params: map[string]string{}}
		s = s[end+1:]
		for {
			s = strings.TrimLeft(s, " \t")
			if s == "" || s[0] == ',' {
				break
			}
			if s[0] != ';' {
				return out // junk after the link-value
			}
			s = strings.TrimLeft(s[1:], " \t")
			name := token(s)
			if name == "" {
				return out
			}
			s = strings.TrimLeft(s[len(name):], " \t")
			value := ""
			if s != "" && s[0] == '=' {
				s = strings.TrimLeft(s[1:], " \t")
				var ok bool
				if value, s, ok = paramValue(s); !ok {
					return out
				}
			}
			name = strings.ToLower(name)
			if _, seen := l.params[name]; !seen {
				l.params[name] = value
			}
		}
		out = append(out, l)
	}
}

// token returns the RFC 7230 token at the start of s ("" if none).
func token(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return s[:i]
		}
	}
	return s
}

// paramValue reads a token or a quoted string (with its backslash escapes)
// at the start of s and returns it with the rest of s.
func paramValue(s string) (value, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		t := token(s)
		return t, s[len(t):], t != ""
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '\\':
			return "", "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false // no closing quote
}

// iceServer turns an rel="ice-server" link into the server pion is given,
// if pion can use it.
func iceServer(l link) (webrtc.ICEServer, bool) {
	rel, ok := l.params["rel"]
	if !ok || !hasField(rel, "ice-server") {
		return webrtc.ICEServer{}, false
	}
	u, err := stun.ParseURI(l.target)
	if err != nil || !plainHost(u.Host) {
		return webrtc.ICEServer{}, false
	}
	s := webrtc.ICEServer{URLs: []string{l.target}}
	if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
		user, cred := l.params["username"], l.params["credential"]
		if ct, ok := l.params["credential-type"]; user == "" || cred == "" || (ok && !strings.EqualFold(ct, "password")) {
			return webrtc.ICEServer{}, false
		}
		s.Username, s.Credential, s.CredentialType = user, cred, webrtc.ICECredentialTypePassword
	}
	return s, true
}

// hasField reports whether the space-separated list v has f (ASCII case
// folded, as relation types are).
func hasField(v, f string) bool {
	for _, x := range strings.Fields(v) {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// plainHost reports whether h is an IP address or a DNS name: nothing that
// could carry anything else (such as user info) into a log or the status.
func plainHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// iceServerURLs is what may be shown of servers: their URLs as pion reads
// them (scheme, host, port and transport), never a username or credential.
func iceServerURLs(servers []webrtc.ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, raw := range s.URLs {
			if u, err := stun.ParseURI(raw); err == nil {
				out = append(out, u.String())
			}
		}
	}
	return out
}
