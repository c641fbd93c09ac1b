package web

import (
	"math"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzParseControl: no message crashes the parser, and whatever it accepts
// is safe to inject: a known type, positions inside the picture, a real
// button, a bounded wheel, a known key, short printable text.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"t":"move","x":0.5,"y":0.25}`, `{"t":"down","b":2,"x":0,"y":1}`, `{"t":"up","b":0,"x":1,"y":0}`,
		`{"t":"wheel","dx":1,"dy":-3,"x":0.1,"y":0.1}`, `{"t":"key","k":"Enter","down":true}`, `{"t":"text","s":"héllo"}`,
		`{"t":"move","x":1e308,"y":-0}`, `{"t":"key","k":"\u0000"}`, `{"t":"text","s":"\ud800"}`, `{}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := ParseControl(msg)
		if err != nil {
			if ev != (ControlEvent{}) {
				t.Fatalf("error %v with a non-zero event %+v", err, ev)
			}
			return
		}
		in01 := func(v float64) bool { return v >= 0 && v <= 1 && !math.IsNaN(v) }
		switch ev.Type {
		case "move", "down", "up", "wheel":
			if !in01(ev.X) || !in01(ev.Y) {
				t.Fatalf("accepted position %v,%v", ev.X, ev.Y)
			}
			if ev.Button < 0 || ev.Button > 2 {
				t.Fatalf("accepted button %d", ev.Button)
			}
			if ev.DX < -maxWheelNotch || ev.DX > maxWheelNotch || ev.DY < -maxWheelNotch || ev.DY > maxWheelNotch {
				t.Fatalf("accepted wheel %d,%d", ev.DX, ev.DY)
			}
		case "key":
			if !slices.Contains(ControlKeys, ev.Key) {
				t.Fatalf("accepted key %q", ev.Key)
			}
		case "text":
			if ev.Text == "" || !utf8.ValidString(ev.Text) || utf8.RuneCountInString(ev.Text) > maxTextRunes {
				t.Fatalf("accepted text %q", ev.Text)
			}
		default:
			t.Fatalf("accepted type %q", ev.Type)
		}
	})
}
