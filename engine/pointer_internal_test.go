package engine

import (
	"testing"

	"github.com/deskcast/deskcast/media"
)

// testShape is a 4×4 pointer: opaque red with its hotspot at (1, 2), one
// transparent pixel at (3, 3).
func testShape() *media.PointerShape {
	pix := make([]byte, 4*4*4)
	for i := 0; i < len(pix); i += 4 {
		pix[i], pix[i+3] = 255, 255
	}
	copy(pix[(3*4+3)*4:], []byte{0, 0, 0, 0})
	return &media.PointerShape{RGBA: pix, W: 4, H: 4, HotX: 1, HotY: 2, Serial: 1}
}

// redAt reports whether the picture's pixel (x, y) is the pointer's red.
func redAt(p *media.Picture, x, y int) bool {
	d := p.Pix[y*p.Stride+x*4:]
	r, g, b := d[0], d[1], d[2]
	if p.Format == media.BGRX {
		r, b = b, r
	}
	return r == 255 && g == 0 && b == 0
}

func TestDrawPointer(t *testing.T) {
	shape := testShape()
	cases := []struct {
		name         string
		w, h         int // the picture
		areaW, areaH int // the shared rectangle
		format       media.PixFmt
		at           [2]int // the pointer's screen pixel
		visible      bool
		red, notRed  [][2]int // picture pixels
		unchanged    bool
	}{
		{"full size BGRX", 32, 16, 32, 16, media.BGRX, [2]int{10, 5}, true,
			[][2]int{{10, 5}, {9, 3}, {12, 5}}, [][2]int{{12, 6}, {13, 5}, {8, 5}, {10, 2}, {12, 7}}, false},
		{"full size RGBA", 32, 16, 32, 16, media.RGBA, [2]int{10, 5}, true,
			[][2]int{{10, 5}, {9, 3}}, [][2]int{{8, 5}}, false},
		{"downscaled by half", 16, 8, 32, 16, media.BGRX, [2]int{10, 6}, true,
			[][2]int{{5, 3}, {6, 2}}, [][2]int{{4, 2}, {7, 3}, {5, 5}}, false},
		{"at the top left corner, clipped", 32, 16, 32, 16, media.BGRX, [2]int{0, 0}, true,
			[][2]int{{0, 0}, {2, 0}}, [][2]int{{2, 1}, {3, 0}}, false},
		{"hidden", 32, 16, 32, 16, media.BGRX, [2]int{10, 5}, false, nil, [][2]int{{10, 5}}, true},
		{"off the picture", 32, 16, 32, 16, media.BGRX, [2]int{40, 5}, true, nil, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pix := make([]byte, c.w*c.h*4)
			p := media.NewPicture(pix, c.w, c.h, c.w*4, c.format, nil)
			ptr := &media.Pointer{X: (float64(c.at[0]) + 0.5) / float64(c.areaW), Y: (float64(c.at[1]) + 0.5) / float64(c.areaH),
				Visible: c.visible, Shape: shape, AreaW: c.areaW, AreaH: c.areaH}
			q, buf := drawPointer(p, ptr, nil)
			if c.unchanged {
				if q != p || buf != nil {
					t.Fatal("a picture without the pointer on it was copied")
				}
				return
			}
			if q == p || &q.Pix[0] != &buf[0] {
				t.Fatal("drawn on the shared picture, not a copy")
			}
			for _, pt := range c.red {
				if !redAt(q, pt[0], pt[1]) {
					t.Errorf("no pointer at %v", pt)
				}
			}
			for _, pt := range c.notRed {
				if redAt(q, pt[0], pt[1]) {
					t.Errorf("pointer at %v", pt)
				}
			}
			for i, v := range pix {
				if v != 0 {
					t.Fatalf("the original picture changed at byte %d", i)
				}
			}
			if q2, buf2 := drawPointer(p, ptr, buf); &buf2[0] != &buf[0] || q2 == p {
				t.Fatal("the buffer is not reused")
			}
		})
	}
}
