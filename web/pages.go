package web

import (
	"html"
	"net/http"
	"strings"
)

// A page is a short message a browser shows instead of the viewer page.
type page struct {
	title, text string
	refresh     string // seconds until the browser asks again; "" for never
	form        bool   // a PIN form
}

var (
	pageInvalid = page{title: "This link is not valid", text: "Scan the QR code again, or ask the presenter for the current link. " +
		"Links change each time sharing starts."}
	pageFull = page{title: "This share is full", text: "The presenter has set a limit on viewers and it has been reached. " +
		"This page tries again every 10 seconds.", refresh: "10"}
	pagePIN     = page{title: "Enter the PIN", text: "The presenter has set a PIN. Ask them for it.", form: true}
	pageWaiting = page{title: "Waiting for the presenter", text: "The presenter has been asked to let you in. " +
		"This page follows on its own.", refresh: "2"}
	pageDenied       = page{title: "Not let in", text: "The presenter did not let you in."}
	pageDisconnected = page{title: "Disconnected", text: "The presenter has disconnected you."}
	pageLocked       = page{title: "Too many wrong PINs", text: "Try again in a minute.", refresh: "60"}
)

const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// render writes p, with note (already plain text) under its text.
func (p page) render(w http.ResponseWriter, code int, note string) {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`)
	if p.refresh != "" {
		b.WriteString(`<meta http-equiv="refresh" content="` + p.refresh + `">`)
	}
	b.WriteString(`<title>Deskcast: ` + html.EscapeString(p.title) + `</title>` +
		`<body style="font:18px system-ui,sans-serif;background:#111;color:#eee;text-align:center;padding:3em 1em">` +
		`<h1 style="font-size:1.6em">` + html.EscapeString(p.title) + `</h1><p>` + html.EscapeString(p.text) + `</p>`)
	if note != "" {
		b.WriteString(`<p role="alert" style="color:#f88">` + html.EscapeString(note) + `</p>`)
	}
	if p.form {
		b.WriteString(`<form method="post" action="/pin"><input name="pin" inputmode="numeric" autocomplete="one-time-code" ` +
			`pattern="[0-9]*" maxlength="12" autofocus aria-label="PIN" style="font-size:1.5em;width:8em;text-align:center">` +
			` <button style="font-size:1.3em">Watch</button></form>`)
	}
	b.WriteString(`</body></html>`)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// refuse answers a request that may not be served: the page's own address
// gets p as HTML, anything else a line of text, and neither any media.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, p page) {
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/" || r.URL.Path == "/pin" {
		p.render(w, code, "")
		return
	}
	http.Error(w, http.StatusText(code)+": "+strings.ToLower(p.title), code)
}
