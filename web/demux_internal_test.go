package web

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// stunHead is the first ten bytes of an RFC 4571 frame holding a STUN binding request.
func stunHead(length uint16) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint16(b, length)
	binary.BigEndian.PutUint16(b[2:], 0x0001) // binding request
	binary.BigEndian.PutUint16(b[4:], length-20)
	binary.BigEndian.PutUint32(b[6:], stunMagicCookie)
	return b
}

func TestSniffKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		head []byte
		want connKind
	}{
		{"GET", []byte("GET / HTTP"), kindHTTP},
		{"POST", []byte("POST /whe"), kindHTTP},
		{"ICE-TCP binding request", stunHead(100), kindICE},
		{"length shorter than a STUN header", stunHead(12), kindUnknown},
		{"no magic cookie", append(stunHead(100)[:6], 1, 2, 3, 4), kindUnknown},
		{"TLS ClientHello", []byte{0x16, 3, 1, 0, 0xa5, 1, 0, 0, 0xa1, 3}, kindUnknown},
		{"empty", nil, kindUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sniffKind(tc.head); got != tc.want {
				t.Errorf("sniffKind(% x) = %v, want %v", tc.head, got, tc.want)
			}
		})
	}
}

// TestDemux sends an ICE-TCP stream and an HTTP request to one port: each
// reaches its own listener with its first bytes intact, and a connection
// that says nothing holds up neither.
func TestDemux(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := newDemux(ln)
	defer d.close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct {
		name string
		send []byte
		l    *subListener
	}{
		{"ice", append(stunHead(28), make([]byte, 20)...), d.ice},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), d.http},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			got := make(chan net.Conn, 1)
			go func() {
				a, err := tc.l.Accept()
				if err == nil {
					got <- a
				}
			}()
			select {
			case a := <-got:
				defer a.Close()
				buf := make([]byte, len(tc.send))
				_ = a.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := io.ReadFull(a, buf); err != nil || string(buf) != string(tc.send) {
					t.Errorf("read %q, %v; want what was sent", buf, err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("not accepted")
			}
		})
	}
}
