package media

// Pointer is where the presenter's mouse pointer is, as fractions of the
// shared picture (0 at the left or top edge, 1 at the right or bottom), and
// what it looks like. It is shared by every viewer and never changed once
// published.
type Pointer struct {
	X, Y    float64
	Visible bool // inside the shared monitor or region, and not hidden by the desktop
	// Shape is the pointer's current image; every Pointer carries it (the
	// same one until it changes), so a viewer that missed an update or joins
	// late still has it. Nil when the platform gives none.
	Shape *PointerShape
	// AreaW and AreaH are the shared rectangle's size in screen pixels, so a
	// picture scaled down can draw the shape at the same scale.
	AreaW, AreaH int
	Seq          uint64 // set by the fan-out

	// Wire is the position message the web layer sends, built once when
	// published; nil when the format needs nothing beyond the fields.
	Wire []byte
}

// PointerShape is a pointer's image: non-premultiplied RGBA pixels, W×H, and
// the same as PNG for the page; the hotspot (HotX, HotY) is the pixel that
// points. Serial changes whenever the desktop's pointer image does.
type PointerShape struct {
	RGBA       []byte
	PNG        []byte
	W, H       int
	HotX, HotY int
	Serial     uint32
}
