package testenv

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"regexp"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// sgr matches an ANSI Select Graphic Rendition sequence, such as a colour.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TermQRPx is how many pixels wide and high TermQR draws a module.
const TermQRPx = 4

// TermQR finds the QR code that out draws with half blocks (▀ ▄ █ and spaces,
// as internal/termqr does, with or without colour codes) among other lines of
// text, draws it as a picture, each character cell one module wide and two
// high, in black for the characters' ink and white for the rest, and decodes it
// with gozxing. It returns the decoded text and the picture.
func TermQR(out string) (string, image.Image, error) {
	var block, best []string
	for l := range strings.Lines(out) {
		l = strings.TrimRight(sgr.ReplaceAllString(l, ""), "\r\n")
		if l != "" && strings.Trim(l, " ▀▄█") == "" {
			block = append(block, l)
			if len(block) > len(best) {
				best = block
			}
		} else {
			block = nil
		}
	}
	if len(best) == 0 {
		return "", nil, errors.New("no lines of half blocks")
	}
	w := 0
	for _, l := range best {
		w = max(w, len([]rune(l)))
	}
	img := image.NewGray(image.Rect(0, 0, w*TermQRPx, 2*len(best)*TermQRPx))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	module := func(x, y int) {
		for dy := range TermQRPx {
			for dx := range TermQRPx {
				img.SetGray(x*TermQRPx+dx, y*TermQRPx+dy, color.Gray{})
			}
		}
	}
	for row, l := range best {
		for x, r := range []rune(l) {
			if r == '▀' || r == '█' {
				module(x, 2*row)
			}
			if r == '▄' || r == '█' {
				module(x, 2*row+1)
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", img, fmt.Errorf("binarising the picture: %w", err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", img, fmt.Errorf("decoding %d lines of half blocks: %w", len(best), err)
	}
	return res.GetText(), img, nil
}
