package app

import (
	"image"

	qrcode "github.com/skip2/go-qrcode"
)

// qrImage encodes url as a QR code image with a quiet zone, size×size pixels.
func qrImage(url string, size int) (image.Image, error) {
	q, err := qrcode.New(url, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	return q.Image(size), nil
}
