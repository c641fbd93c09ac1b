//go:build linux && cgo

package pipewire

/*
#cgo CFLAGS: -I/usr/include/pipewire-0.3 -I/usr/include/spa-0.2 -D_REENTRANT
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "pw.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stream is one screen-cast stream. Copy and Cursor may be called from any
// goroutine; Close once, last.
type Stream struct {
	s       *C.dc_stream
	notify  *os.File
	changes chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Load reports whether libpipewire can be loaded here.
func Load() error {
	if msg := C.dc_load(); msg != nil {
		return fmt.Errorf("%w: %s", ErrUnavailable, C.GoString(msg))
	}
	return nil
}

// Open connects to node through the PipeWire remote fd, which it takes
// over (and closes, even on failure), asking for at most maxFPS frames a
// second.
func Open(fd int, node uint32, maxFPS int) (*Stream, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("creating an eventfd: %w", err)
	}
	var msg [256]C.char
	s := C.dc_open(C.int(fd), C.uint32_t(node), C.int(maxFPS), C.int(efd), &msg[0], C.size_t(len(msg)))
	if s == nil {
		unix.Close(efd)
		return nil, errors.New(C.GoString(&msg[0]))
	}
	st := &Stream{s: s, notify: os.NewFile(uintptr(efd), "pipewire-notify"),
		changes: make(chan struct{}, 1), done: make(chan struct{})}
	go st.watch()
	return st, nil
}

// watch turns the C side's eventfd writes into Changes notices.
func (st *Stream) watch() {
	defer close(st.done)
	var b [8]byte
	for {
		if _, err := st.notify.Read(b[:]); err != nil {
			return
		}
		select {
		case st.changes <- struct{}{}:
		default:
		}
	}
}

// Changes receives a value after a new frame, a cursor change or a state
// change; notices that find one pending count as one.
func (st *Stream) Changes() <-chan struct{} { return st.changes }

// State is nil while the stream connects or runs, and why it stopped once
// it has. Streaming says whether frames flow.
func (st *Stream) State() (streaming bool, err error) {
	var msg [256]C.char
	switch C.dc_state(st.s, &msg[0], C.size_t(len(msg))) {
	case -1:
		return false, errors.New(C.GoString(&msg[0]))
	case 1:
		return true, nil
	}
	return false, nil
}

// Copy copies the newest frame into dst if its Seq is not seq. It reports
// the frame's layout, and whether it copied; a dst too small for the frame
// is an error (with the layout, to size the next one).
func (st *Stream) Copy(seq uint64, dst []byte) (Frame, bool, error) {
	var info C.dc_frame
	var p *C.uint8_t
	if len(dst) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&dst[0]))
	}
	r := C.dc_copy(st.s, C.uint64_t(seq), p, C.size_t(len(dst)), &info)
	f := Frame{Width: int(info.width), Height: int(info.height), RGB: info.format == C.DC_RGBX, Seq: uint64(info.seq)}
	if r < 0 {
		return f, false, fmt.Errorf("a %d×%d frame needs %d bytes, have %d", f.Width, f.Height, f.Width*f.Height*4, len(dst))
	}
	return f, r == 1, nil
}

// Cursor returns the pointer's state; when its bitmap's serial is not serial
// and fits in rgba (W*H*4 bytes), the bitmap is copied there too.
func (st *Stream) Cursor(serial uint64, rgba []byte) Cursor {
	var c C.dc_cursor
	var p *C.uint8_t
	if len(rgba) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&rgba[0]))
	}
	C.dc_get_cursor(st.s, C.uint64_t(serial), p, C.size_t(len(rgba)), &c)
	return Cursor{Visible: c.visible != 0, X: int(c.x), Y: int(c.y), HotX: int(c.hot_x), HotY: int(c.hot_y),
		W: int(c.w), H: int(c.h), Serial: uint64(c.serial), Seq: uint64(c.seq)}
}

// Close disconnects the stream and waits for its goroutine.
func (st *Stream) Close() error {
	st.once.Do(func() {
		C.dc_close(st.s) // stops the PipeWire thread: no more writes to notify
		st.notify.Close()
		<-st.done
	})
	return nil
}

// Wait waits until the first frame arrives or the stream fails.
func (st *Stream) Wait(ctx context.Context) error {
	for {
		if f, _, _ := st.Copy(^uint64(0), nil); f.Seq > 0 {
			return nil
		}
		if _, err := st.State(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.changes:
		}
	}
}
