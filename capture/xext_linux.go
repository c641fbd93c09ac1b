package capture

import (
	"fmt"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// xgb's extension Init functions write its process-wide event and error
// tables, on every call, while every open connection's reader goroutine
// reads them: two Inits at once (the grabber's MIT-SHM and DAMAGE, the
// pointer's XFixes, the monitor list's Xinerama, each started by a
// different hub) race, and can crash with a concurrent map write. So each
// extension is initialised once per process, under one lock for them all;
// later connections only look up its opcode.
var (
	extMu   sync.Mutex
	extDone = map[string]byte{} // extension name → the first event number registered
)

// initExt makes extension name usable on conn, calling init (the
// extension's xgb Init) the first time in the process. It returns the
// extension's first event number on this server and the one registered in
// xgb's tables: they differ on a server that numbers events otherwise, whose
// events cannot then be read.
func initExt(conn *xgb.Conn, name string, init func(*xgb.Conn) error) (first, registered byte, err error) {
	reply, err := xproto.QueryExtension(conn, uint16(len(name)), name).Reply()
	switch {
	case err != nil:
		return 0, 0, err
	case !reply.Present:
		return 0, 0, fmt.Errorf("the X server has no %s extension", name)
	}
	extMu.Lock()
	registered, ok := extDone[name]
	if !ok {
		if err := init(conn); err != nil {
			extMu.Unlock()
			return 0, 0, err
		}
		registered = reply.FirstEvent
		extDone[name] = registered
	}
	extMu.Unlock()
	conn.ExtLock.Lock()
	conn.Extensions[name] = reply.MajorOpcode
	conn.ExtLock.Unlock()
	return reply.FirstEvent, registered, nil
}
