package capture

import (
	"image"
	"testing"

	"github.com/deskcast/deskcast/media"
)

// injectorPixel is the remote-control mapping (engine's injector): a page
// fraction onto a pixel of the shared rectangle. PointerFraction must be its inverse.
func injectorPixel(r image.Rectangle, fx, fy float64) image.Point {
	return image.Pt(r.Min.X+min(int(fx*float64(r.Dx())), r.Dx()-1), r.Min.Y+min(int(fy*float64(r.Dy())), r.Dy()-1))
}

func TestPointerFraction(t *testing.T) {
	mon := image.Rect(0, 0, 1920, 1080)
	second := image.Rect(1920, 0, 1920+1280, 1024)
	region := image.Rect(100, 200, 100+640, 200+480)
	cases := []struct {
		name   string
		rect   image.Rectangle
		pt     image.Point
		fx, fy float64
		inside bool
	}{
		{"top left", mon, image.Pt(0, 0), 0.5 / 1920, 0.5 / 1080, true},
		{"centre", mon, image.Pt(960, 540), 960.5 / 1920, 540.5 / 1080, true},
		{"bottom right", mon, image.Pt(1919, 1079), 1919.5 / 1920, 1079.5 / 1080, true},
		{"right of the monitor", mon, image.Pt(1920, 10), 1920.5 / 1920, 10.5 / 1080, false},
		{"second monitor", second, image.Pt(1920+640, 512), 640.5 / 1280, 512.5 / 1024, true},
		{"left of the second monitor", second, image.Pt(1919, 512), -0.5 / 1280, 512.5 / 1024, false},
		{"region", region, image.Pt(100+320, 200+120), 320.5 / 640, 120.5 / 480, true},
		{"above the region", region, image.Pt(150, 199), 50.5 / 640, -0.5 / 480, false},
		{"empty", image.Rectangle{}, image.Pt(0, 0), 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx, fy, in := PointerFraction(c.rect, c.pt.X, c.pt.Y)
			if fx != c.fx || fy != c.fy || in != c.inside {
				t.Fatalf("PointerFraction(%v, %v) = %v, %v, %v; want %v, %v, %v", c.rect, c.pt, fx, fy, in, c.fx, c.fy, c.inside)
			}
			if in {
				if back := injectorPixel(c.rect, fx, fy); back != c.pt {
					t.Fatalf("the remote-control mapping takes %v, %v to %v, not %v", fx, fy, back, c.pt)
				}
			}
		})
	}
}

func TestPointerState(t *testing.T) {
	rect := image.Rect(0, 0, 100, 100)
	a := &media.PointerShape{Serial: 1}
	b := &media.PointerShape{Serial: 2}
	var st pointerState
	steps := []struct {
		name    string
		x, y    int
		shape   *media.PointerShape
		emit    bool
		visible bool
	}{
		{"first", 10, 10, a, true, true},
		{"still", 10, 10, a, false, false},
		{"moved", 11, 10, a, true, true},
		{"new shape", 11, 10, b, true, true},
		{"out", 150, 10, b, true, false},
		{"moving outside", 160, 10, b, false, false},
		{"back in", 50, 50, b, true, true},
		{"blank cursor", 50, 50, nil, true, false},
		{"blank cursor moving", 60, 50, nil, false, false},
		{"shape back", 60, 50, a, true, true},
	}
	for _, s := range steps {
		p := st.next(rect, s.x, s.y, s.shape)
		if (p != nil) != s.emit {
			t.Fatalf("%s: emitted %v, want %v", s.name, p != nil, s.emit)
		}
		if p != nil && (p.Visible != s.visible || p.Shape != s.shape || p.AreaW != 100) {
			t.Fatalf("%s: %+v", s.name, p)
		}
	}
}

func TestNewPointerShape(t *testing.T) {
	// 2×1: an opaque red pixel, and a half-transparent premultiplied blue one.
	s, err := newPointerShape([]uint32{0xffff0000, 0x80000080}, 2, 1, 1, 0, 7)
	if err != nil || s == nil {
		t.Fatal(s, err)
	}
	want := []byte{255, 0, 0, 255, 0, 0, 128, 128}
	if string(s.RGBA) != string(want) || s.HotX != 1 || s.Serial != 7 || len(s.PNG) < 8 || string(s.PNG[1:4]) != "PNG" {
		t.Fatalf("%+v", s)
	}
	if s, err := newPointerShape([]uint32{0, 0}, 2, 1, 0, 0, 1); s != nil || err != nil {
		t.Fatalf("a blank cursor: %v, %v; want nil, nil", s, err)
	}
	if _, err := newPointerShape([]uint32{0}, 2, 1, 0, 0, 1); err == nil {
		t.Fatal("too few pixels accepted")
	}
}
