package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
)

// PointerMode is how viewers see the presenter's pointer.
type PointerMode string

// The pointer modes; "on" is the default.
const (
	PointerOff       PointerMode = "off"
	PointerOn        PointerMode = "on"
	PointerHighlight PointerMode = "highlight" // on, with a soft ring around it on the page
)

// ParsePointerMode reads a --pointer value: on, off or highlight ("" is on).
func ParsePointerMode(s string) (PointerMode, error) {
	switch m := PointerMode(s); m {
	case "":
		return PointerOn, nil
	case PointerOff, PointerOn, PointerHighlight:
		return m, nil
	}
	return "", fmt.Errorf("pointer %q: want on, off or highlight", s)
}

// Shown reports whether viewers see the pointer.
func (m PointerMode) Shown() bool { return m != PointerOff }

// PointerQueue is the pointer hub's Options.Queue: a viewer may fall this
// many updates behind before it loses the oldest (each carries the shape,
// so only positions are ever lost, and the newest is always sent).
const PointerQueue = 4

// PointerPrepare is the pointer hub's Options.Prepare: it publishes a
// numbered copy of p whose Wire is the position message of /ws/pointer,
// built once for every viewer; p itself is left as it was.
func PointerPrepare(p *media.Pointer, seq uint64) *media.Pointer {
	np := *p
	np.Seq = seq
	np.Wire = pointerMessage(p)
	return &np
}

// pointerMessage is {"type":"pos","x":…,"y":…,"visible":…,"shape":serial}:
// a few dozen bytes, written by hand to cost nothing at 60 a second.
func pointerMessage(p *media.Pointer) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"type":"pos","x":`...)
	b = strconv.AppendFloat(b, p.X, 'f', 6, 64)
	b = append(b, `,"y":`...)
	b = strconv.AppendFloat(b, p.Y, 'f', 6, 64)
	b = append(b, `,"visible":`...)
	b = strconv.AppendBool(b, p.Visible)
	b = append(b, `,"shape":`...)
	var serial uint32
	if p.Shape != nil {
		serial = p.Shape.Serial
	}
	b = strconv.AppendUint(b, uint64(serial), 10)
	return append(b, '}')
}

// shapeMessage is the text message that announces a shape, with the shared
// rectangle's size (aw, ah), which the page scales the shape by; the PNG
// follows as a binary message.
func shapeMessage(p *media.Pointer) []byte {
	s := p.Shape
	return fmt.Appendf(nil, `{"type":"shape","shape":%d,"w":%d,"h":%d,"hx":%d,"hy":%d,"aw":%d,"ah":%d}`,
		s.Serial, s.W, s.H, s.HotX, s.HotY, p.AreaW, p.AreaH)
}

// SetPointerMode changes how viewers see the pointer, live: the page reads it
// from /api/status, and /stream.mjpg draws it into frames only while it is shown.
func (s *Server) SetPointerMode(m PointerMode) { s.pointerMode.Store(&m) }

// PointerMode returns how viewers see the pointer; off without a pointer hub.
func (s *Server) PointerMode() PointerMode {
	if s.cfg.Pointer == nil {
		return PointerOff
	}
	return *s.pointerMode.Load()
}

// mjpegHub is the JPEG hub a picture request gets: the one with the pointer
// drawn in, unless the pointer is not shown or the request says ?pointer=0
// (the page, which draws the pointer itself).
func (s *Server) mjpegHub(r *http.Request) *fanout.Hub[*media.Frame] {
	if s.cfg.VideoPointer != nil && s.PointerMode().Shown() && r.URL.Query().Get("pointer") != "0" {
		return s.cfg.VideoPointer
	}
	return s.video
}

// handleWSPointer sends the presenter's pointer over a WebSocket for the
// page to draw over the picture: each shape once (a text message with its
// size and hotspot, then the PNG as a binary message), to a new viewer at
// once, then a small text message per move.
func (s *Server) handleWSPointer(w http.ResponseWriter, r *http.Request) {
	if !s.Mode().Video() || !s.PointerMode().Shown() {
		http.Error(w, "the pointer is not shown", http.StatusServiceUnavailable)
		return
	}
	c, done := s.acceptSocket(w, r)
	if c == nil {
		return
	}
	defer done()
	l, err := s.cfg.Pointer.Subscribe(fanout.SubscriberInfo{ID: viewerID(r), Addr: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		return
	}
	defer l.Close()
	ctx := c.CloseRead(r.Context()) // we only send; this notices the peer closing
	var shape *media.PointerShape   // the last shape sent
	var area [2]int                 // and the shared rectangle's size sent with it
	write := func(typ websocket.MessageType, b []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
		if err := c.Write(wctx, typ, b); err != nil {
			return false
		}
		s.bytesSent.Add(uint64(len(b)))
		return true
	}
	for {
		select {
		case p := <-l.Frames():
			if p.Shape != nil && (p.Shape != shape || area != [2]int{p.AreaW, p.AreaH}) {
				if !write(websocket.MessageText, shapeMessage(p)) || !write(websocket.MessageBinary, p.Shape.PNG) {
					return
				}
				shape, area = p.Shape, [2]int{p.AreaW, p.AreaH}
			}
			if !write(websocket.MessageText, p.Wire) {
				return
			}
			l.Sent(len(p.Wire))
		case <-l.Done():
			return
		case <-ctx.Done():
			return
		}
	}
}
