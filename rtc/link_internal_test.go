package rtc

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

func TestParseICELinks(t *testing.T) {
	stunServer := webrtc.ICEServer{URLs: []string{"stun:stun.example.net"}}
	turnServer := func(url string) webrtc.ICEServer {
		return webrtc.ICEServer{URLs: []string{url}, Username: "user", Credential: "pass", CredentialType: webrtc.ICECredentialTypePassword}
	}
	const creds = `; username="user"; credential="pass"; credential-type="password"`
	for _, tc := range []struct {
		name    string
		headers []string
		want    []webrtc.ICEServer
	}{
		{"none", nil, nil},
		{"RFC 9725's examples, one a header", []string{
			`<stun:stun.example.net>; rel="ice-server"`,
			`<turn:turn.example.net?transport=udp>; rel="ice-server"` + creds,
			`<turn:turn.example.net?transport=tcp>; rel="ice-server"` + creds,
			`<turns:turn.example.net?transport=tcp>; rel="ice-server"` + creds,
		}, []webrtc.ICEServer{stunServer, turnServer("turn:turn.example.net?transport=udp"),
			turnServer("turn:turn.example.net?transport=tcp"), turnServer("turns:turn.example.net?transport=tcp")}},
		{"several in one header", []string{`<stun:stun.example.net>; rel="ice-server", <turn:198.18.1.1:3478?transport=udp>; rel="ice-server"` + creds},
			[]webrtc.ICEServer{stunServer, turnServer("turn:198.18.1.1:3478?transport=udp")}},
		{"MediaMTX's form (no credential-type is password too)", []string{`<turn:turn.example.net:3478>; rel="ice-server"; username="user"; credential="pass"`},
			[]webrtc.ICEServer{turnServer("turn:turn.example.net:3478")}},
		{"spaces, case and an unquoted rel", []string{`  < stun:stun.example.net >;REL=ice-server ;  Foo=bar`}, []webrtc.ICEServer{stunServer}},
		{"rel with other relation types", []string{`<stun:stun.example.net>; rel="preload ice-server"`}, []webrtc.ICEServer{stunServer}},
		{"escapes in a credential", []string{`<turn:t.example.net>; rel="ice-server"; username="a\"b"; credential="c\\d,e;f"`},
			[]webrtc.ICEServer{{URLs: []string{"turn:t.example.net"}, Username: `a"b`, Credential: `c\d,e;f`, CredentialType: webrtc.ICECredentialTypePassword}}},
		{"the first rel counts", []string{`<stun:stun.example.net>; rel="next"; rel="ice-server"`}, nil},
		{"other links", []string{`<https://example.net/whip/1>; rel="next"`, `<stun:stun.example.net>`}, nil},
		{"not STUN or TURN", []string{`<https://stun.example.net>; rel="ice-server"`, `<stun:>; rel="ice-server"`, `<stun:a b>; rel="ice-server"`}, nil},
		{"user info in the host", []string{`<turn:secret@t.example.net>; rel="ice-server"` + creds}, nil},
		{"TURN without credentials", []string{`<turn:t.example.net>; rel="ice-server"`, `<turn:t.example.net>; rel="ice-server"; username="user"`}, nil},
		{"OAuth credentials", []string{`<turn:t.example.net>; rel="ice-server"; username="u"; credential="c"; credential-type="oauth"`}, nil},
		{"an unclosed quote ends the header", []string{`<stun:stun.example.net>; rel="ice-server, <stun:b.example.net>; rel="ice-server"`}, nil},
		{"junk ends the header, the next one counts",
			[]string{`<stun:stun.example.net>; rel="ice-server" junk, <stun:b.example.net>; rel="ice-server"`, `<stun:stun.example.net>; rel="ice-server"`},
			[]webrtc.ICEServer{stunServer}},
		{"no closing bracket", []string{`<stun:stun.example.net; rel="ice-server"`}, nil},
		{"empty parameter name", []string{`<stun:stun.example.net>; ="ice-server"`}, nil},
		{"at most maxICEServers", []string{strings.Repeat(`<stun:stun.example.net>; rel="ice-server",`, maxICEServers+3)},
			slices.Repeat([]webrtc.ICEServer{stunServer}, maxICEServers)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseICELinks(tc.headers)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseICELinks(%q)\n = %+v\nwant %+v", tc.headers, got, tc.want)
			}
			// pion takes every server returned.
			if len(got) > 0 {
				pc, err := webrtc.NewPeerConnection(webrtc.Configuration{ICEServers: got})
				if err != nil {
					t.Fatalf("pion refuses %+v: %v", got, err)
				}
				_ = pc.Close()
			}
		})
	}
}

// TestLinkServerURLs: what the status shows of the servers has no username
// or credential.
func TestLinkServerURLs(t *testing.T) {
	servers := parseICELinks([]string{`<stun:stun.example.net>; rel="ice-server"`,
		`<turn:turn.example.net?transport=tcp>; rel="ice-server"; username="alice"; credential="s3cret"`})
	got := iceServerURLs(servers)
	want := []string{"stun:stun.example.net:3478", "turn:turn.example.net:3478?transport=tcp"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("iceServerURLs = %q, want %q", got, want)
	}
}

// linkHeader writes s as a Link header, as a server would.
func linkHeader(s webrtc.ICEServer) string {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	h := fmt.Sprintf(`<%s>; rel="ice-server"`, s.URLs[0])
	if s.Username != "" {
		h += fmt.Sprintf(`; username="%s"; credential="%s"; credential-type="password"`, q.Replace(s.Username), q.Replace(s.Credential.(string)))
	}
	return h
}

// FuzzICELinks feeds parseICELinks arbitrary Link headers: it must not
// panic, must return at most maxICEServers, each one pion can use, and
// must read them back the same from the headers a server would write.
func FuzzICELinks(f *testing.F) {
	f.Add(`<stun:stun.example.net>; rel="ice-server"`, `<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="pass"; credential-type="password"`)
	f.Add(`<stun:a>; rel="ice-server", <turns:b:5349?transport=tcp>; rel=ice-server; username="u\""; credential="\\"`, ``)
	f.Add(`<`, `;`)
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		got := parseICELinks([]string{h1, h2})
		if len(got) > maxICEServers {
			t.Fatalf("%d servers", len(got))
		}
		var again []string
		for _, s := range got {
			u, err := stun.ParseURI(s.URLs[0])
			if err != nil {
				t.Fatalf("%q: %v", s.URLs[0], err)
			}
			turn := u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS
			if cred, _ := s.Credential.(string); turn && (s.Username == "" || cred == "" || s.CredentialType != webrtc.ICECredentialTypePassword) {
				t.Fatalf("a TURN server without credentials: %+v", s)
			}
			again = append(again, linkHeader(s))
		}
		if back := parseICELinks(again); !reflect.DeepEqual(back, got) {
			t.Fatalf("read back as %+v, want %+v", back, got)
		}
	})
}
