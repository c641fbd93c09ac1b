package engine

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/fanout"
	"github.com/deskcast/deskcast/media"
	"github.com/deskcast/deskcast/pipeline"
	"github.com/deskcast/deskcast/web"
)

// pointerSource is the presenter's pointer over what s shares.
// On Wayland it comes from the screen's portal stream.
func pointerSource(s Settings, portal *capture.Portal) fanout.Source[*media.Pointer] {
	p, err := capture.NewPointer(capture.PointerConfig{Monitor: s.Monitor, Region: s.Region, Portal: portal})
	if err != nil {
		return nil // the screen's own checks report the setting
	}
	return p
}

// newPointerHub is the pointer's fan-out: a short queue per viewer (every
// update carries the shape, so only positions are ever lost), the newest
// replayed to a viewer that joins, each update's message built once.
func (e *Engine) newPointerHub(s Settings) *fanout.Hub[*media.Pointer] {
	return fanout.New(pointerSource(s, e.portal), fanout.Options[*media.Pointer]{Logger: e.log,
		Queue: web.PointerQueue, Replay: true, Prepare: web.PointerPrepare, OnChange: e.changed})
}

// firstPointerWait bounds how long a starting pointer track waits for the
// pointer before its first frame, so that a snapshot has the pointer in it.
const firstPointerWait = 300 * time.Millisecond

// pointerJPEGTrack is the encoding for clients that cannot draw the pointer
// themselves (players, an <img> without the page's script) and for
// snapshots: JPEG with the pointer drawn into the picture. It runs only
// while such a client watches; then a pointer move on a still screen
// re-encodes the held picture for this track alone (asked for as a
// keyframe, at most once per frame interval), and the page's own stream
// and the WebRTC tracks are not touched.
func pointerJPEGTrack(quality, fps int, pointers *fanout.Hub[*media.Pointer], track **pipeline.Track) pipeline.TrackOptions {
	return pipeline.TrackOptions{
		Name: "jpeg+pointer",
		Encoder: func() (media.Encoder, error) {
			enc, err := jpegTrack(quality).Encoder()
			if err != nil {
				return nil, err
			}
			return newPointerEncoder(enc, pointers, func() { (*track).RequestKeyframe() }), nil
		},
		Delivery:      pipeline.NewestWins,
		Prepare:       web.MJPEGPrepare,
		KeyframeEvery: time.Second / time.Duration(min(max(fps, 1), 120)),
	}
}

// pointerEncoder draws the newest pointer into each picture before its
// encoder encodes it. While it is open it follows the pointer hub, and asks
// for a new encode (redraw) whenever the pointer changes.
type pointerEncoder struct {
	enc    media.Encoder
	cur    atomic.Pointer[media.Pointer]
	buf    []byte // the copy the pointer is drawn on, reused
	cancel context.CancelFunc
	done   chan struct{}
}

func newPointerEncoder(enc media.Encoder, pointers *fanout.Hub[*media.Pointer], redraw func()) *pointerEncoder {
	ctx, cancel := context.WithCancel(context.Background())
	pe := &pointerEncoder{enc: enc, cancel: cancel, done: make(chan struct{})}
	sub, err := pointers.Subscribe(fanout.SubscriberInfo{ID: "track jpeg+pointer"})
	if err != nil { // the share is closing: frames go out without the pointer
		close(pe.done)
		return pe
	}
	select {
	case p := <-sub.Frames():
		pe.cur.Store(p)
	case <-time.After(firstPointerWait):
	}
	go func() {
		defer close(pe.done)
		defer sub.Close()
		for {
			select {
			case p := <-sub.Frames():
				pe.cur.Store(p)
				redraw()
			case <-sub.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return pe
}

// Encode encodes p with the pointer drawn in.
func (pe *pointerEncoder) Encode(p *media.Picture) (*media.Frame, error) {
	var q *media.Picture
	q, pe.buf = drawPointer(p, pe.cur.Load(), pe.buf)
	return pe.enc.Encode(q)
}

// ForceKeyframe passes the request on.
func (pe *pointerEncoder) ForceKeyframe() { pe.enc.ForceKeyframe() }

// Close stops following the pointer and closes the encoder.
func (pe *pointerEncoder) Close() error {
	pe.cancel()
	<-pe.done
	return pe.enc.Close()
}

// drawPointer returns p with ptr drawn over it: p itself when the pointer is
// not on it, else a copy in buf (grown when too small; returned for reuse),
// since a published picture is shared and never changed. The shape is scaled
// as the picture is (the stream's downscale) and its hotspot lands on the
// pointer's pixel.
func drawPointer(p *media.Picture, ptr *media.Pointer, buf []byte) (*media.Picture, []byte) {
	if ptr == nil || !ptr.Visible || ptr.Shape == nil || ptr.AreaW <= 0 || ptr.AreaH <= 0 {
		return p, buf
	}
	sh := ptr.Shape
	sx, sy := float64(p.Width)/float64(ptr.AreaW), float64(p.Height)/float64(ptr.AreaH)
	dw, dh := max(1, int(math.Round(float64(sh.W)*sx))), max(1, int(math.Round(float64(sh.H)*sy)))
	left := int(math.Floor(ptr.X*float64(p.Width) - (float64(sh.HotX)+0.5)*sx + 0.5))
	top := int(math.Floor(ptr.Y*float64(p.Height) - (float64(sh.HotY)+0.5)*sy + 0.5))
	x0, y0 := max(left, 0), max(top, 0)
	x1, y1 := min(left+dw, p.Width), min(top+dh, p.Height)
	if x0 >= x1 || y0 >= y1 {
		return p, buf
	}
	n := p.Stride * p.Height
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	copy(buf, p.Pix[:n])
	q := media.NewPicture(buf, p.Width, p.Height, p.Stride, p.Format, nil)
	q.Captured, q.Grab = p.Captured, p.Grab
	ri, bi := 0, 2 // where red and blue are in a pixel
	if p.Format == media.BGRX {
		ri, bi = 2, 0
	}
	for y := y0; y < y1; y++ {
		srow := min(int(float64(y-top)/sy), sh.H-1) * sh.W * 4
		row := buf[y*p.Stride:]
		for x := x0; x < x1; x++ {
			s := sh.RGBA[srow+min(int(float64(x-left)/sx), sh.W-1)*4:]
			a := uint32(s[3])
			if a == 0 {
				continue
			}
			d := row[x*4:]
			// Premultiplied "over": out = src + dst × (1 − alpha).
			d[ri] = byte(uint32(s[0]) + uint32(d[ri])*(255-a)/255)
			d[1] = byte(uint32(s[1]) + uint32(d[1])*(255-a)/255)
			d[bi] = byte(uint32(s[2]) + uint32(d[bi])*(255-a)/255)
		}
	}
	return q, buf
}
