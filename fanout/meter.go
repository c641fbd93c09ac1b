package fanout

import (
	"sync"
	"time"
)

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
