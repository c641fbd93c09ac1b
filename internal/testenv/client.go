package testenv

import (
	"net/http"
	"net/http/cookiejar"
	"testing"
)

// Client returns an HTTP client that behaves as one browser: its own cookie
// jar and its own connections, closed when the test ends. It does not
// follow redirects, so tests see them. It has no overall timeout, since a
// stream outlives any fixed one: give requests a context with a deadline,
// or set Timeout.
func Client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
