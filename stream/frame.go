// Package stream fans encoded frames out to every viewer over HTTP. It knows
// nothing of where frames come from: a Source feeds it.
package stream

import (
	"context"
	"sync"
	"time"
)

// Frame is one encoded picture. Its bytes are shared by every viewer and must
// never be changed after the frame is published.
type Frame struct {
	JPEG     []byte
	Width    int
	Height   int
	Seq      uint64        // set by the broadcaster, 1 for the first frame it publishes
	Captured time.Time     // when the source started grabbing it
	Grab     time.Duration // time the source spent grabbing
	Encode   time.Duration // time the source spent scaling and encoding

	// part is JPEG followed by the next multipart header, built once when the
	// frame is published so each viewer's send is a single write of shared bytes.
	part []byte
}

// Source produces frames until ctx ends. It should emit the first frame at
// once and later ones only when the picture changes; it returns nil when ctx
// ends and an error when it cannot go on (the broadcaster retries).
type Source interface {
	Run(ctx context.Context, emit func(*Frame)) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, emit func(*Frame)) error

// Run calls f.
func (f SourceFunc) Run(ctx context.Context, emit func(*Frame)) error { return f(ctx, emit) }

// meter counts events per second over whole one-second windows.
type meter struct {
	mu        sync.Mutex
	start     time.Time
	cur, prev uint64
}

func (m *meter) roll(now time.Time) {
	switch d := now.Sub(m.start); {
	case d < time.Second:
	case d < 2*time.Second:
		m.prev, m.cur, m.start = m.cur, 0, m.start.Add(time.Second)
	default:
		m.prev, m.cur, m.start = 0, 0, now
	}
}

// Add counts n events now.
func (m *meter) Add(n uint64) {
	m.mu.Lock()
	m.roll(time.Now())
	m.cur += n
	m.mu.Unlock()
}

// Rate returns the count of the last whole second.
func (m *meter) Rate() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(time.Now())
	return m.prev
}
