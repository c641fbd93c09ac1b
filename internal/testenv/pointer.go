package testenv

import (
	"fmt"
	"image"
	"image/color"

	"github.com/jezek/xgb/xproto"
)

// Glyphs of X's cursor font (X11/cursorfont.h), for SetCursor.
const (
	GlyphCrosshair uint16 = 34
	GlyphHand      uint16 = 60
	GlyphArrow     uint16 = 68 // left_ptr
	GlyphTextBeam  uint16 = 152
)

// Warp moves the X pointer to (px, py) on the root window and returns once the server has done it.
func (x *X) Warp(px, py int) error {
	xproto.WarpPointer(x.conn, 0, x.root, 0, 0, 0, 0, int16(px), int16(py))
	return x.Sync()
}

// SetCursor shows the cursor font's glyph in colour c (its outline white)
// wherever the pointer is over r: on the root window when r is empty, else
// over an invisible (input-only) window covering r, made for it. The
// pointer then looks like that glyph there, as over an application's window.
func (x *X) SetCursor(r image.Rectangle, glyph uint16, c color.RGBA) error {
	font, err := xproto.NewFontId(x.conn)
	if err != nil {
		return err
	}
	if err := xproto.OpenFontChecked(x.conn, font, uint16(len("cursor")), "cursor").Check(); err != nil {
		return fmt.Errorf("opening the cursor font: %w", err)
	}
	defer xproto.CloseFont(x.conn, font)
	cur, err := xproto.NewCursorId(x.conn)
	if err != nil {
		return err
	}
	c16 := func(v uint8) uint16 { return uint16(v) * 257 }
	if err := xproto.CreateGlyphCursorChecked(x.conn, cur, font, font, glyph, glyph+1,
		c16(c.R), c16(c.G), c16(c.B), 0xffff, 0xffff, 0xffff).Check(); err != nil {
		return fmt.Errorf("creating the cursor: %w", err)
	}
	if r.Empty() {
		return xproto.ChangeWindowAttributesChecked(x.conn, x.root, xproto.CwCursor, []uint32{uint32(cur)}).Check()
	}
	win, err := xproto.NewWindowId(x.conn)
	if err != nil {
		return err
	}
	err = xproto.CreateWindowChecked(x.conn, 0, win, x.root, int16(r.Min.X), int16(r.Min.Y),
		uint16(r.Dx()), uint16(r.Dy()), 0, xproto.WindowClassInputOnly, 0,
		xproto.CwOverrideRedirect|xproto.CwCursor, []uint32{1, uint32(cur)}).Check()
	if err != nil {
		return fmt.Errorf("creating the cursor's window: %w", err)
	}
	if err := xproto.MapWindowChecked(x.conn, win).Check(); err != nil {
		return err
	}
	return x.Sync()
}

// hideCursor gives the root window a blank cursor. X draws the pointer
// over the screen, and Deskcast shows it to viewers, so the server's
// default cursor in the middle of the screen would sit on the colours other
// tests sample; a test of the pointer sets one with SetCursor.
func (x *X) hideCursor() error {
	pix, err := xproto.NewPixmapId(x.conn)
	if err != nil {
		return err
	}
	if err := xproto.CreatePixmapChecked(x.conn, 1, pix, xproto.Drawable(x.root), 1, 1).Check(); err != nil {
		return fmt.Errorf("creating the blank cursor's pixmap: %w", err)
	}
	defer xproto.FreePixmap(x.conn, pix)
	gc, err := xproto.NewGcontextId(x.conn)
	if err != nil {
		return err
	}
	xproto.CreateGC(x.conn, gc, xproto.Drawable(pix), xproto.GcForeground, []uint32{0})
	xproto.PolyFillRectangle(x.conn, xproto.Drawable(pix), gc, []xproto.Rectangle{{Width: 1, Height: 1}})
	xproto.FreeGC(x.conn, gc)
	cur, err := xproto.NewCursorId(x.conn)
	if err != nil {
		return err
	}
	if err := xproto.CreateCursorChecked(x.conn, cur, pix, pix, 0, 0, 0, 0, 0, 0, 0, 0).Check(); err != nil {
		return fmt.Errorf("creating the blank cursor: %w", err)
	}
	return xproto.ChangeWindowAttributesChecked(x.conn, x.root, xproto.CwCursor, []uint32{uint32(cur)}).Check()
}
