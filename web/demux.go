package web

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// stunMagicCookie sits at bytes 4..7 of every STUN message (RFC 5389), so at
// bytes 6..9 of an RFC 4571 ICE-TCP stream, after its 2-byte length.
const stunMagicCookie = 0x2112A442

// sniffTimeout is how long a new connection may take to send the bytes that
// tell HTTP from ICE-TCP (HTTP's ReadHeaderTimeout bounds the rest).
const sniffTimeout = 5 * time.Second

// demux splits one TCP listener in two: connections that start like an HTTP
// request go to the HTTP server, those that start with an RFC 4571 length
// and a STUN header (ICE-TCP, WebRTC's fallback when UDP is blocked) go to
// the ICE listener, so both use the one port the user opens.
type demux struct {
	ln   net.Listener
	http *subListener
	ice  *subListener

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // being sniffed
	wg      sync.WaitGroup        // the accept loop and the sniffers
}

func newDemux(ln net.Listener) *demux {
	d := &demux{ln: ln, pending: map[net.Conn]struct{}{}}
	d.http = newSubListener(d, ln.Addr())
	d.ice = newSubListener(d, ln.Addr())
	d.wg.Add(1)
	go d.acceptLoop()
	return d
}

func (d *demux) acceptLoop() {
	defer d.wg.Done()
	defer d.http.fail()
	defer d.ice.fail()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			_ = c.Close()
			return
		}
		d.pending[c] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go d.sniff(c)
	}
}

// sniff reads the first bytes of c and hands it on, those bytes put back.
func (d *demux) sniff(c net.Conn) {
	defer d.wg.Done()
	kind, head := classify(c)
	d.mu.Lock()
	delete(d.pending, c)
	closed := d.closed
	d.mu.Unlock()
	pc := &prefixConn{Conn: c, head: head}
	switch {
	case closed:
		_ = c.Close()
	case kind == kindHTTP:
		d.http.deliver(pc)
	case kind == kindICE:
		d.ice.deliver(pc)
	default:
		_ = c.Close()
	}
}

type connKind int

const (
	kindUnknown connKind = iota
	kindHTTP
	kindICE
)

// classify reads as many bytes as it needs: one for HTTP (a method starts
// with an upper-case letter; an RFC 4571 length of a STUN message is below
// 0x0100, so its first byte is never a letter), ten for ICE-TCP.
func classify(c net.Conn) (connKind, []byte) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head[:1]); err != nil {
		return kindUnknown, nil
	}
	if head[0] >= 'A' && head[0] <= 'Z' {
		return kindHTTP, head[:1]
	}
	if _, err := io.ReadFull(c, head[1:]); err != nil {
		return kindUnknown, nil
	}
	return sniffKind(head), head
}

// sniffKind tells what the first ten bytes of a connection are.
func sniffKind(head []byte) connKind {
	switch {
	case len(head) == 0:
		return kindUnknown
	case head[0] >= 'A' && head[0] <= 'Z':
		return kindHTTP
	case len(head) >= 10 && binary.BigEndian.Uint32(head[6:10]) == stunMagicCookie &&
		head[2]&0xC0 == 0 && // a STUN message type's top two bits are zero
		int(binary.BigEndian.Uint16(head[0:2])) >= 20: // at least a STUN header
		return kindICE
	}
	return kindUnknown
}

// close stops accepting and closes the connections still being sniffed; it
// waits for the accept loop and the sniffers. Connections handed on belong
// to their listener's user.
func (d *demux) close() error {
	d.mu.Lock()
	d.closed = true
	for c := range d.pending {
		_ = c.Close()
	}
	d.mu.Unlock()
	err := d.ln.Close()
	d.wg.Wait()
	return err
}

// subListener is one side of a demux.
type subListener struct {
	d     *demux
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{} // closed by Close
	once  sync.Once
	dead  chan struct{} // closed when the demux stops accepting
	dOnce sync.Once
}

func newSubListener(d *demux, addr net.Addr) *subListener {
	return &subListener{d: d, addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), dead: make(chan struct{})}
}

// deliver hands c to Accept, or closes it when nobody accepts within sniffTimeout.
func (l *subListener) deliver(c net.Conn) {
	t := time.NewTimer(sniffTimeout)
	defer t.Stop()
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	case <-t.C:
		_ = c.Close()
	}
}

func (l *subListener) fail() { l.dOnce.Do(func() { close(l.dead) }) }

// Accept returns the next connection of this kind.
func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.dead:
		return nil, net.ErrClosed
	}
}

// Close stops this side; the other goes on.
func (l *subListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the shared listener's address.
func (l *subListener) Addr() net.Addr { return l.addr }

// prefixConn gives back the bytes sniffed off a connection before the rest.
type prefixConn struct {
	net.Conn
	head []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes a TCP connection: net/http does so before closing
// one on which it refused a request, so that the client reads the answer
// rather than a reset.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
