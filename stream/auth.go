package stream

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
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

// authorize checks the request's token, from ?t= or the cookie. A valid ?t=
// sets the cookie, so the page's own requests need no token in the URL.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	// A query url.URL.Query cannot parse would lose its t= silently and let
	// an old cookie speak for it: refuse it instead.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return false
	}
	if ts, ok := q["t"]; ok {
		if len(ts) == 1 && s.tokenOK(ts[0]) {
			http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: ts[0], Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode})
			return true
		}
		return false // a wrong ?t= is not rescued by an old cookie
	}
	c, err := r.Cookie(s.cookieName())
	return err == nil && s.tokenOK(c.Value)
}

func (s *Server) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}
