package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/deskcast/deskcast/access"
)

// NewToken returns a fresh random 128-bit share token, as 32 hex digits.
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ValidToken reports whether t can be used as a fixed --token: 16 to 128
// characters of letters, digits, '-' and '_', so it needs no escaping in a URL.
func ValidToken(t string) error {
	if len(t) < 16 || len(t) > 128 {
		return errors.New("token: want 16 to 128 characters")
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errors.New("token: use only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// cookieName is per port, so two Deskcast servers on one host keep apart.
func (s *Server) cookieName() string { return "deskcast_" + strconv.Itoa(s.Port()) }

// credentials are what a request shows to get in.
type credentials struct {
	token    string // the ?t= value
	hasToken bool   // a t= was given (even if empty or wrong)
	secret   string // the session cookie's value; "" for none
}

var errBadQuery = errors.New("malformed query")

// readCredentials takes the token from rawQuery and the session secret from
// the cookie named name. A query url.ParseQuery cannot read, or a repeated
// t=, is an error: either could otherwise hide a wrong token behind a cookie.
func readCredentials(rawQuery string, cookies []*http.Cookie, name string) (credentials, error) {
	var c credentials
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return c, errBadQuery
	}
	if ts, ok := q["t"]; ok {
		if len(ts) != 1 {
			return c, errBadQuery
		}
		c.token, c.hasToken = ts[0], true
	}
	for _, k := range cookies {
		if k.Name == name {
			if c.secret != "" {
				return c, errBadQuery // two cookies of ours: trust neither
			}
			c.secret = k.Value
		}
	}
	return c, nil
}

// credentials reads r's token (?t=, or an "Authorization: Bearer" header,
// as WHEP players send it) and its session cookie. Two tokens that differ
// are an error, like a repeated t=.
func (s *Server) credentials(r *http.Request) (credentials, error) {
	c, err := readCredentials(r.URL.RawQuery, r.Cookies(), s.cookieName())
	if err != nil {
		return c, err
	}
	if t, ok := bearer(r); ok {
		if c.hasToken && t != c.token {
			return c, errBadQuery
		}
		c.token, c.hasToken = t, true
	}
	return c, nil
}

func (s *Server) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}

// session finds or makes the request's session. A valid ?t= makes one (and
// sets its cookie) unless the request already has one; a wrong ?t= is not
// rescued by a cookie. It answers the request itself when it returns nil.
func (s *Server) session(w http.ResponseWriter, r *http.Request) *access.Session {
	c, err := s.credentials(r)
	if err != nil || (c.hasToken && !s.tokenOK(c.token)) {
		s.refuse(w, r, http.StatusUnauthorized, pageInvalid)
		return nil
	}
	sess := s.viewers.Lookup(c.secret)
	if sess == nil && c.hasToken {
		sess, err = s.viewers.Create(r.RemoteAddr, r.UserAgent())
		if err != nil {
			s.log.Info("viewer refused", "addr", r.RemoteAddr, "err", err)
			if errors.Is(err, access.ErrTooManyWaiting) {
				http.Error(w, "429 too many requests: "+err.Error(), http.StatusTooManyRequests)
				return nil
			}
			s.refuse(w, r, http.StatusServiceUnavailable, pageFull)
			return nil
		}
		s.log.Info("new viewer", "addr", r.RemoteAddr, "id", sess.ID(), "browser", access.BrowserName(sess.UserAgent()), "state", sess.State())
	}
	if sess == nil {
		s.refuse(w, r, http.StatusUnauthorized, pageInvalid)
		return nil
	}
	if c.hasToken {
		http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: sess.Secret(), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	return sess
}

// isLoopback reports whether remote (host:port, or a bare host) is this computer.
func isLoopback(remote string) bool {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		h = remote
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}
