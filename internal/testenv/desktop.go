package testenv

import (
	"image"
	"image/color"
	"math/rand/v2"
)

// Desktop draws a busy desktop-like picture: a gradient wallpaper, windows
// full of text-like strokes, a photo-like area and a taskbar. Flat colours
// would make JPEG unrealistically cheap; this costs about what a real desktop
// does. The same seed gives the same picture.
func Desktop(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(30 + 60*x/w), uint8(60 + 80*y/h), uint8(120 + 100*(x+y)/(w+h)), 255})
		}
	}
	fill := func(r image.Rectangle, c color.RGBA) {
		r = r.Intersect(img.Rect)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	// windows of text
	for i := range 4 {
		x0, y0 := w/20+i*w/5, h/12+i*h/10
		win := image.Rect(x0, y0, x0+w/2, y0+h/2)
		fill(win, color.RGBA{250, 250, 250, 255})
		fill(image.Rect(win.Min.X, win.Min.Y, win.Max.X, win.Min.Y+24), color.RGBA{60, 70, 90, 255})
		for ly := win.Min.Y + 36; ly < win.Max.Y-12; ly += 18 {
			for lx := win.Min.X + 10; lx < win.Max.X-40; {
				wl := 6 + rng.IntN(40)
				fill(image.Rect(lx, ly, lx+wl, ly+2+rng.IntN(9)), color.RGBA{uint8(rng.IntN(60)), uint8(rng.IntN(60)), uint8(rng.IntN(90)), 255})
				lx += wl + 5 + rng.IntN(6)
			}
		}
	}
	// a photo-like area: smooth colour with fine noise
	ph := image.Rect(w*6/10, h*5/10, w*95/100, h*88/100)
	for y := ph.Min.Y; y < ph.Max.Y; y++ {
		for x := ph.Min.X; x < ph.Max.X; x++ {
			n := rng.IntN(24)
			img.SetRGBA(x, y, color.RGBA{uint8(100 + (x*3)%120 + n), uint8(80 + (y*5)%140 + n), uint8(60 + ((x+y)*2)%100 + n), 255})
		}
	}
	fill(image.Rect(0, h-40, w, h), color.RGBA{25, 25, 30, 255})
	return img
}
