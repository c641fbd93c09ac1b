package access

import (
	"fmt"
	"strings"
	"time"
)

// ControlMode says whether viewers may drive the presenter's desktop.
type ControlMode string

const (
	ControlOff   ControlMode = ""    // no input from viewers at all
	ControlGrant ControlMode = "on"  // input from the one viewer the presenter grants it to
	ControlAll   ControlMode = "all" // input from every viewer let in: a trusted room
)

// ParseControlMode reads --control's value.
func ParseControlMode(s string) (ControlMode, error) {
	switch strings.ToLower(s) {
	case "", "off", "false", "no":
		return ControlOff, nil
	case "on", "true", "yes", "grant":
		return ControlGrant, nil
	case "all":
		return ControlAll, nil
	}
	return "", fmt.Errorf("control %q: want on, all or off", s)
}

// The control rate of one viewer (Session.TakeControlToken).
const (
	controlRate  = 250 // events a second, on average ...
	controlBurst = 500 // ... with bursts up to this
)

// bucket is a token bucket: n events a second, bursts up to max.
type bucket struct {
	tokens, rate, max float64
	last              time.Time
}

func (b *bucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.max, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
