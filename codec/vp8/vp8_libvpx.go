//go:build linux && cgo && !novpx

package vp8

/*
#cgo LDFLAGS: -lvpx -lyuv
#include <stdlib.h>
#include <string.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>
#include <libyuv/convert.h>

// The timebase of the pts libvpx is given: RTP's 90 kHz video clock.
#define DC_TIMEBASE 90000

// dc_enc_open initialises ctx for w×h pictures; the settings and why are in
// the Go comment on session.open.
static vpx_codec_err_t dc_enc_open(vpx_codec_ctx_t* ctx, int w, int h, int bitrate,
		int speed, int minq, int maxq, int kfcap) {
	vpx_codec_enc_cfg_t cfg;
	vpx_codec_err_t rc = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &cfg, 0);
	if (rc != VPX_CODEC_OK) return rc;
	// g_usage stays 0: VP8 has that one usage (vpx_codec_enc_config_default
	// refuses another), and picks its real-time mode from the deadline,
	// VPX_DL_REALTIME on every encode.
	cfg.g_w = w;
	cfg.g_h = h;
	cfg.g_timebase.num = 1;
	cfg.g_timebase.den = DC_TIMEBASE;
	cfg.g_threads = 1;
	cfg.g_lag_in_frames = 0;
	cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
	cfg.g_pass = VPX_RC_ONE_PASS;
	cfg.rc_end_usage = VPX_CBR;
	cfg.rc_target_bitrate = bitrate / 1000; // kbit/s
	cfg.rc_min_quantizer = minq;
	cfg.rc_max_quantizer = maxq;
	cfg.rc_dropframe_thresh = 0;
	cfg.rc_resize_allowed = 0;
	cfg.rc_undershoot_pct = 100;
	cfg.rc_overshoot_pct = 15;
	cfg.rc_buf_initial_sz = 500;
	cfg.rc_buf_optimal_sz = 600;
	cfg.rc_buf_sz = 1000;
	cfg.kf_mode = VPX_KF_DISABLED;
	cfg.kf_min_dist = 0;
	cfg.kf_max_dist = 0x7fffffff;
	rc = vpx_codec_enc_init(ctx, vpx_codec_vp8_cx(), &cfg, 0);
	if (rc != VPX_CODEC_OK) return rc;
	if ((rc = vpx_codec_control(ctx, VP8E_SET_CPUUSED, -speed)) != VPX_CODEC_OK ||
	    (rc = vpx_codec_control(ctx, VP8E_SET_SCREEN_CONTENT_MODE, 1)) != VPX_CODEC_OK ||
	    (rc = vpx_codec_control(ctx, VP8E_SET_STATIC_THRESHOLD, 100)) != VPX_CODEC_OK ||
	    (rc = vpx_codec_control(ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT, kfcap * 100)) != VPX_CODEC_OK ||
	    (rc = vpx_codec_control(ctx, VP8E_SET_NOISE_SENSITIVITY, 0)) != VPX_CODEC_OK ||
	    (rc = vpx_codec_control(ctx, VP8E_SET_TOKEN_PARTITIONS, VP8_ONE_TOKENPARTITION)) != VPX_CODEC_OK) {
		vpx_codec_destroy(ctx);
		return rc;
	}
	return VPX_CODEC_OK;
}

// dc_set_bitrate changes the CBR target of an open encoder, in bit/s.
static vpx_codec_err_t dc_set_bitrate(vpx_codec_ctx_t* ctx, int bitrate) {
	vpx_codec_enc_cfg_t cfg = *ctx->config.enc;
	cfg.rc_target_bitrate = bitrate / 1000;
	return vpx_codec_enc_config_set(ctx, &cfg);
}

// dc_convert turns 4-byte pixels into img's I420 planes. libyuv names formats
// by their value as a little-endian word: its "ARGB" is B,G,R,A in memory
// (our BGRX), its "ABGR" is R,G,B,A (our RGBA). Odd sizes are fine: the last
// chroma column and row come from one pixel.
static int dc_convert(const uint8_t* src, int stride, int rgba, vpx_image_t* img) {
	int (*f)(const uint8_t*, int, uint8_t*, int, uint8_t*, int, uint8_t*, int, int, int) =
		rgba ? ABGRToI420 : ARGBToI420;
	return f(src, stride,
		img->planes[VPX_PLANE_Y], img->stride[VPX_PLANE_Y],
		img->planes[VPX_PLANE_U], img->stride[VPX_PLANE_U],
		img->planes[VPX_PLANE_V], img->stride[VPX_PLANE_V],
		(int)img->d_w, (int)img->d_h);
}

// dc_encode encodes img and gathers what came out: the total size of the
// frame packets, and whether they make a keyframe.
// A droppable frame updates no reference frame and no probability: the
// decoder's state after it is what it was before, so it may be left out.
static vpx_codec_err_t dc_encode(vpx_codec_ctx_t* ctx, vpx_image_t* img, long long pts, long duration,
		int key, int droppable, size_t* size, int* iskey) {
	vpx_enc_frame_flags_t flags = 0;
	if (key) flags = VPX_EFLAG_FORCE_KF;
	else if (droppable) flags = VP8_EFLAG_NO_UPD_LAST | VP8_EFLAG_NO_UPD_GF | VP8_EFLAG_NO_UPD_ARF | VP8_EFLAG_NO_UPD_ENTROPY;
	vpx_codec_err_t rc = vpx_codec_encode(ctx, img, pts, duration, flags, VPX_DL_REALTIME);
	*size = 0;
	*iskey = 0;
	if (rc != VPX_CODEC_OK) return rc;
	vpx_codec_iter_t it = NULL;
	const vpx_codec_cx_pkt_t* pkt;
	while ((pkt = vpx_codec_get_cx_data(ctx, &it)) != NULL) {
		if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
		*size += pkt->data.frame.sz;
		if (pkt->data.frame.flags & VPX_FRAME_IS_KEY) *iskey = 1;
	}
	return VPX_CODEC_OK;
}

// dc_copy copies the frame packets of the last dc_encode, one after the
// other (libvpx keeps them until the next encode), into dst.
static void dc_copy(vpx_codec_ctx_t* ctx, uint8_t* dst) {
	vpx_codec_iter_t it = NULL;
	const vpx_codec_cx_pkt_t* pkt;
	while ((pkt = vpx_codec_get_cx_data(ctx, &it)) != NULL) {
		if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
		memcpy(dst, pkt->data.frame.buf, pkt->data.frame.sz);
		dst += pkt->data.frame.sz;
	}
}

static vpx_codec_err_t dc_dec_open(vpx_codec_ctx_t* ctx) {
	vpx_codec_dec_cfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.threads = 1;
	return vpx_codec_dec_init(ctx, vpx_codec_vp8_dx(), &cfg, 0);
}

// dc_decode decodes one frame and returns its picture, or NULL.
static vpx_codec_err_t dc_decode(vpx_codec_ctx_t* ctx, const uint8_t* src, unsigned int n, vpx_image_t** img) {
	*img = NULL;
	vpx_codec_err_t rc = vpx_codec_decode(ctx, src, n, NULL, 0);
	if (rc != VPX_CODEC_OK) return rc;
	vpx_codec_iter_t it = NULL;
	*img = vpx_codec_get_frame(ctx, &it);
	return VPX_CODEC_OK;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"time"
	"unsafe"

	"github.com/deskcast/deskcast/media"
)

// Available reports whether libvpx's VP8 encoder works here: it opens one the
// first time it is called and remembers the answer.
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	ctx := (*C.vpx_codec_ctx_t)(C.calloc(1, C.sizeof_vpx_codec_ctx_t))
	if ctx == nil {
		return errors.New("initialising libvpx: out of memory")
	}
	defer C.free(unsafe.Pointer(ctx))
	if rc := C.dc_enc_open(ctx, 64, 64, DefaultBitrate, DefaultSpeed, DefaultMinQ, DefaultMaxQ, DefaultKeyframeCap); rc != C.VPX_CODEC_OK {
		return fmt.Errorf("initialising libvpx's VP8 encoder: %s", C.GoString(C.vpx_codec_err_to_string(rc)))
	}
	C.vpx_codec_destroy(ctx)
	return nil
})

// session is one libvpx encoder at one size, opened anew when the size
// changes, with the I420 picture libyuv fills, both in C memory: libvpx keeps
// pointers into its context, and cgo forbids C keeping Go pointers.
type session struct {
	opt           Options
	ctx           *C.vpx_codec_ctx_t
	open          bool
	img           *C.vpx_image_t
	width, height int // 0 before the first picture
	epoch         time.Time
	pts           int64 // the last picture's, in 1/90000 s
	lastKey       int   // the size of the last keyframe at this size
	sinceKey      int   // frames since the last keyframe (0 for the keyframe itself)
}

func newSession(opt Options) (*session, error) {
	ctx := (*C.vpx_codec_ctx_t)(C.calloc(1, C.sizeof_vpx_codec_ctx_t))
	if ctx == nil {
		return nil, errors.New("initialising libvpx: out of memory")
	}
	return &session{opt: opt, ctx: ctx}, nil
}

// reopen initialises the encoder for a w×h picture. Its first frame is a
// keyframe. The settings follow what WebRTC's own VP8 screen sharing uses
// (libwebrtc's LibvpxVp8Encoder), with these choices:
//   - CBR over a 1 s buffer (0.5 s initially, 0.6 s optimal), undershoot 100%
//     and overshoot 15%, so the rate control reacts within a few frames when
//     a scroll starts;
//   - no periodic keyframes (kf_mode disabled) and no frame dropping
//     (rc_dropframe_thresh 0): a dropped frame would leave the old picture on
//     every screen until the next change. Screen-content mode 1, not 2, for
//     the same reason: 2 drops a frame that overshoots a lot (a new screen)
//     and codes the next at MaxQ;
//   - the keyframe's target capped by VP8E_SET_MAX_INTRA_BITRATE_PCT to
//     KeyframeCap frames' worth of Bitrate/FPS;
//   - a static threshold of 100 (WebRTC's for screens): a macroblock whose
//     difference from the reference is below it is coded as unchanged, so an
//     unchanged area costs almost nothing;
//   - a fixed speed (a negative cpu_used), so the time an encode takes does
//     not change the stream; one thread; error resilience on, since a
//     viewer's packets get lost.
func (s *session) reopen(w, h int) error {
	s.release()
	s.img = C.vpx_img_alloc(nil, C.VPX_IMG_FMT_I420, C.uint(w), C.uint(h), 32)
	if s.img == nil {
		return errors.New("initialising libvpx: out of memory")
	}
	o := s.opt
	if rc := C.dc_enc_open(s.ctx, C.int(w), C.int(h), C.int(o.Bitrate), C.int(o.Speed), C.int(o.MinQ), C.int(o.MaxQ), C.int(o.KeyframeCap)); rc != C.VPX_CODEC_OK {
		s.release()
		return fmt.Errorf("initialising libvpx's VP8 encoder for %dx%d: %s", w, h, C.GoString(C.vpx_codec_err_to_string(rc)))
	}
	s.open = true
	s.width, s.height = w, h
	s.epoch, s.lastKey = time.Time{}, 0
	return nil
}

// encode converts and encodes p, as a keyframe if key (the first frame at a
// size is one anyway).
func (s *session) encode(p *media.Picture, key bool) (coded, error) {
	if !s.open || p.Width != s.width || p.Height != s.height {
		if err := s.reopen(p.Width, p.Height); err != nil {
			return coded{}, err
		}
	}
	rgba := C.int(0)
	if p.Format == media.RGBA {
		rgba = 1
	}
	if rc := C.dc_convert((*C.uint8_t)(unsafe.Pointer(&p.Pix[0])), C.int(p.Stride), rgba, s.img); rc != 0 {
		return coded{}, fmt.Errorf("encoding vp8: converting to I420: libyuv error %d", int(rc))
	}
	pts, dur := s.timestamp(p.Captured)
	// With two layers, every other frame after a keyframe is droppable.
	droppable := s.opt.TemporalLayers == 2 && !key && s.sinceKey%2 == 1
	f, err := s.encodeImage(pts, dur, key, droppable)
	// A whole new screen (a slide, a window switch) coded as an inter frame
	// costs libvpx twice what a keyframe of it does, at a lower Y-PSNR (the
	// tests' 1080p desktops: 110 KB at 37.3 dB against 57 KB at 38.6 dB):
	// its real-time mode decision codes text poorly as intra blocks of an
	// inter frame. When an inter frame comes out bigger than the last
	// keyframe (and than four frames' worth of Bitrate, so that refining a
	// small keyframe never makes another), the picture is coded again as a
	// keyframe, which the decoder needs nothing before, and the inter frame
	// is thrown away. The rate control counts both, and spends less on the
	// next few frames; the picture costs two encodes.
	budget := s.opt.Bitrate / 8 / s.opt.FPS
	if err == nil && f.data != nil && !f.key && s.lastKey > 0 && len(f.data) > max(s.lastKey*5/4, 4*budget) {
		s.pts++
		f, err = s.encodeImage(s.pts, dur, true, false)
	}
	if err == nil && f.key {
		s.lastKey = len(f.data)
		s.sinceKey = 0
	}
	if err == nil && f.data != nil {
		s.sinceKey++
	}
	return f, err
}

// encodeImage encodes the converted picture, a keyframe if key, and copies
// out what libvpx made of it.
func (s *session) encodeImage(pts, dur int64, key, droppable bool) (coded, error) {
	var size C.size_t
	var isKey C.int
	if rc := C.dc_encode(s.ctx, s.img, C.longlong(pts), C.long(dur), boolInt(key), boolInt(droppable), &size, &isKey); rc != C.VPX_CODEC_OK {
		return coded{}, fmt.Errorf("encoding vp8: %s: %s", C.GoString(C.vpx_codec_err_to_string(rc)), C.GoString(C.vpx_codec_error_detail(s.ctx)))
	}
	if size == 0 {
		return coded{}, nil
	}
	data := make([]byte, int(size))
	C.dc_copy(s.ctx, (*C.uint8_t)(unsafe.Pointer(&data[0])))
	return coded{data: data, key: isKey != 0, droppable: droppable && isKey == 0}, nil
}

// timestamp gives libvpx the capture time, in 1/90000 s since the first
// picture at this size, and the frame's duration (1/FPS). Its rate control
// takes the frame rate from the time between pictures, and would spend a
// pause's worth of bits on the first change after one: the step from one
// picture to the next counts as at most three frame times (100 ms at 30 fps),
// and at least one tick, since libvpx wants pts to increase.
func (s *session) timestamp(captured time.Time) (pts, dur int64) {
	if captured.IsZero() {
		captured = time.Now()
	}
	dur = int64(C.DC_TIMEBASE) / int64(s.opt.FPS)
	if s.epoch.IsZero() {
		s.epoch, s.pts = captured, 0
		return 0, dur
	}
	step := int64(captured.Sub(s.epoch) * C.DC_TIMEBASE / time.Second)
	s.epoch = captured
	s.pts += min(max(step, 1), 3*dur)
	return s.pts, dur
}

// setBitrate changes the CBR target, now if the encoder is open and at every
// later open.
func (s *session) setBitrate(bps int) error {
	s.opt.Bitrate = bps
	if !s.open {
		return nil
	}
	if rc := C.dc_set_bitrate(s.ctx, C.int(bps)); rc != C.VPX_CODEC_OK {
		return fmt.Errorf("setting the vp8 bitrate to %d: %s", bps, C.GoString(C.vpx_codec_err_to_string(rc)))
	}
	return nil
}

// release frees the encoder and its picture, not the context's memory.
func (s *session) release() {
	if s.open {
		C.vpx_codec_destroy(s.ctx)
		s.open = false
	}
	if s.img != nil {
		C.vpx_img_free(s.img)
		s.img = nil
	}
	s.width, s.height = 0, 0
}

func (s *session) close() {
	s.release()
	if s.ctx != nil {
		C.free(unsafe.Pointer(s.ctx))
		s.ctx = nil
	}
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Decoder decodes VP8 with libvpx's decoder, for tests and measurements (a
// viewer's browser does the real decoding). It is used from one goroutine at
// a time.
type Decoder struct {
	ctx *C.vpx_codec_ctx_t
}

// NewDecoder returns a decoder, or ErrUnavailable in a build without libvpx.
func NewDecoder() (*Decoder, error) {
	ctx := (*C.vpx_codec_ctx_t)(C.calloc(1, C.sizeof_vpx_codec_ctx_t))
	if ctx == nil {
		return nil, errors.New("initialising libvpx's VP8 decoder: out of memory")
	}
	if rc := C.dc_dec_open(ctx); rc != C.VPX_CODEC_OK {
		C.free(unsafe.Pointer(ctx))
		return nil, fmt.Errorf("initialising libvpx's VP8 decoder: %s", C.GoString(C.vpx_codec_err_to_string(rc)))
	}
	return &Decoder{ctx: ctx}, nil
}

// Decode decodes one VP8 frame and returns its picture, copied out of the
// decoder; nil with a nil error when the data held no picture to show.
func (d *Decoder) Decode(frame []byte) (*image.YCbCr, error) {
	if d.ctx == nil {
		return nil, errors.New("decoding vp8: decoder closed")
	}
	if len(frame) == 0 {
		return nil, nil
	}
	// libvpx's VP8 decoder parses the frame during the call and keeps no
	// pointer into it.
	var img *C.vpx_image_t
	if rc := C.dc_decode(d.ctx, (*C.uint8_t)(unsafe.Pointer(&frame[0])), C.uint(len(frame)), &img); rc != C.VPX_CODEC_OK {
		return nil, fmt.Errorf("decoding vp8: %s", C.GoString(C.vpx_codec_err_to_string(rc)))
	}
	if img == nil {
		return nil, nil
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("decoding vp8: picture format %d, want I420", int(img.fmt))
	}
	w, h := int(img.d_w), int(img.d_h)
	out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	plane := func(dst []byte, dstStride int, i, pw, ph int) {
		stride := int(img.stride[i])
		src := unsafe.Slice((*byte)(unsafe.Pointer(img.planes[i])), (ph-1)*stride+pw)
		for y := range ph {
			copy(dst[y*dstStride:y*dstStride+pw], src[y*stride:])
		}
	}
	plane(out.Y, out.YStride, C.VPX_PLANE_Y, w, h)
	plane(out.Cb, out.CStride, C.VPX_PLANE_U, (w+1)/2, (h+1)/2)
	plane(out.Cr, out.CStride, C.VPX_PLANE_V, (w+1)/2, (h+1)/2)
	return out, nil
}

// Close frees the decoder. Closing twice is fine.
func (d *Decoder) Close() error {
	if d.ctx != nil {
		C.vpx_codec_destroy(d.ctx)
		C.free(unsafe.Pointer(d.ctx))
		d.ctx = nil
	}
	return nil
}
