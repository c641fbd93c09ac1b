//go:build linux && cgo && !noopenh264

package h264

/*
#cgo LDFLAGS: -lopenh264 -lyuv
#include <stdlib.h>
#include <string.h>
#include <wels/codec_api.h>
#include <libyuv/convert.h>

// OpenH264's C API is its C++ vtable, which Go cannot call through: these
// wrappers do.

static void dc_quiet_enc(ISVCEncoder* e) {
	int level = WELS_LOG_QUIET;
	(*e)->SetOption(e, ENCODER_OPTION_TRACE_LEVEL, &level);
}

static int dc_enc_open(ISVCEncoder** pe, int w, int h, int bitrate, float fps, int minQP, int maxQP, int layers) {
	if (WelsCreateSVCEncoder(pe) != 0 || *pe == NULL) return -1;
	ISVCEncoder* e = *pe;
	dc_quiet_enc(e);
	SEncParamExt p;
	memset(&p, 0, sizeof p);
	(*e)->GetDefaultParams(e, &p);
	// Camera real-time mode, though this is a screen: OpenH264's screen-content
	// mode spends twice to four times as long a frame (1080p: 15-25 ms against
	// 7-8 ms for a scroll or a dragged window, 11.5 against 6.8 ms for an
	// unchanged picture, 67 against 17 ms for a whole new screen) for nearly
	// the same stream (scroll 0.58 against 0.61 Mbit/s, dragged window 1.35
	// against 1.50, at 40.6 against 40.4 dB and 41.5 against 41.4 dB Y-PSNR);
	// only a whole new screen costs more (78 against 48 KB). At 30 frames a
	// second that halves the share's CPU and takes 10 ms off the latency.
	p.iUsageType = CAMERA_VIDEO_REAL_TIME;
	p.iPicWidth = w;
	p.iPicHeight = h;
	p.iTargetBitrate = bitrate;
	// A maximum bitrate acts only by skipping frames, which we do not allow.
	p.iMaxBitrate = UNSPECIFIED_BIT_RATE;
	p.iRCMode = RC_BITRATE_MODE;
	p.fMaxFrameRate = fps;
	p.bEnableFrameSkip = false;
	p.uiIntraPeriod = 0;
	p.iMultipleThreadIdc = 1;
	p.eSpsPpsIdStrategy = CONSTANT_ID;
	p.bPrefixNalAddingCtrl = false;
	p.bEnableSSEI = false;
	p.iEntropyCodingModeFlag = 0;
	p.iTemporalLayerNum = layers;
	p.iSpatialLayerNum = 1;
	p.iNumRefFrame = 1;
	SSpatialLayerConfig* l = &p.sSpatialLayers[0];
	l->uiProfileIdc = PRO_BASELINE;
	l->iVideoWidth = w;
	l->iVideoHeight = h;
	l->fFrameRate = fps;
	l->iSpatialBitrate = bitrate;
	l->iMaxSpatialBitrate = p.iMaxBitrate;
	l->sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
	// Say what the pixels are, so that no browser guesses: libyuv's
	// studio-swing BT.601 matrix over a screen's sRGB.
	l->bVideoSignalTypePresent = true;
	l->uiVideoFormat = VF_UNDEF;
	l->bFullRange = false;
	l->bColorDescriptionPresent = true;
	l->uiColorPrimaries = CP_BT709;
	l->uiTransferCharacteristics = TRC_IEC61966_2_1;
	l->uiColorMatrix = CM_SMPTE170M;
	// OpenH264 leaves both at its defaults unless iMinQp is set.
	p.iMinQp = minQP;
	p.iMaxQp = maxQP;
	// The deblocking filter smears text, intra edges above all: a 1080p
	// desktop's IDR at QP 25 decodes at 39.9 dB Y-PSNR with it and 45.0 dB
	// without, in the same bytes. The weakest offsets (-12 on the filter's
	// index) leave it off below QP 28 and gentle above, against blocking
	// when the quantiser rises.
	p.bEnableBackgroundDetection = false;
	p.bEnableAdaptiveQuant = false;
	p.bEnableSceneChangeDetect = false;
	p.iLoopFilterDisableIdc = 0;
	p.iLoopFilterAlphaC0Offset = -6;
	p.iLoopFilterBetaOffset = -6;
	int rc = (*e)->InitializeExt(e, &p);
	if (rc != 0) {
		WelsDestroySVCEncoder(e);
		*pe = NULL;
		return rc;
	}
	int format = videoFormatI420;
	(*e)->SetOption(e, ENCODER_OPTION_DATAFORMAT, &format);
	return 0;
}

static int dc_set_bitrate(ISVCEncoder* e, int bitrate) {
	SBitrateInfo b;
	memset(&b, 0, sizeof b);
	b.iLayer = SPATIAL_LAYER_ALL;
	b.iBitrate = bitrate;
	return (*e)->SetOption(e, ENCODER_OPTION_BITRATE, &b);
}

static void dc_enc_close(ISVCEncoder* e) {
	(*e)->Uninitialize(e);
	WelsDestroySVCEncoder(e);
}

// dc_convert turns 4-byte pixels into I420 planes packed in one buffer.
// libyuv names formats by their value as a little-endian word: its "ARGB" is
// B,G,R,A in memory (our BGRX), its "ABGR" is R,G,B,A (our RGBA).
static int dc_convert(const uint8_t* src, int stride, int rgba, int w, int h, uint8_t* i420) {
	uint8_t* y = i420;
	uint8_t* u = y + w * h;
	uint8_t* v = u + (w / 2) * (h / 2);
	if (rgba) return ABGRToI420(src, stride, y, w, u, w / 2, v, w / 2, w, h);
	return ARGBToI420(src, stride, y, w, u, w / 2, v, w / 2, w, h);
}

static int dc_encode(ISVCEncoder* e, uint8_t* i420, int w, int h, long long ts, int idr, SFrameBSInfo* info) {
	SSourcePicture pic;
	memset(&pic, 0, sizeof pic);
	pic.iColorFormat = videoFormatI420;
	pic.iPicWidth = w;
	pic.iPicHeight = h;
	pic.iStride[0] = w;
	pic.iStride[1] = pic.iStride[2] = w / 2;
	pic.pData[0] = i420;
	pic.pData[1] = i420 + w * h;
	pic.pData[2] = pic.pData[1] + (w / 2) * (h / 2);
	pic.uiTimeStamp = ts;
	if (idr) {
		int rc = (*e)->ForceIntraFrame(e, true);
		if (rc != 0) return rc;
	}
	memset(info, 0, sizeof *info);
	return (*e)->EncodeFrame(e, &pic, info);
}

// dc_size is the length of every NAL unit of every layer, start codes included.
static int dc_size(const SFrameBSInfo* info) {
	int n = 0;
	for (int i = 0; i < info->iLayerNum; i++)
		for (int j = 0; j < info->sLayerInfo[i].iNalCount; j++)
			n += info->sLayerInfo[i].pNalLengthInByte[j];
	return n;
}

static void dc_copy(const SFrameBSInfo* info, uint8_t* dst) {
	for (int i = 0; i < info->iLayerNum; i++) {
		const SLayerBSInfo* l = &info->sLayerInfo[i];
		int n = 0;
		for (int j = 0; j < l->iNalCount; j++) n += l->pNalLengthInByte[j];
		memcpy(dst, l->pBsBuf, n);
		dst += n;
	}
}

static int dc_dec_open(ISVCDecoder** pd) {
	if (WelsCreateDecoder(pd) != 0 || *pd == NULL) return -1;
	ISVCDecoder* d = *pd;
	int level = WELS_LOG_QUIET;
	(*d)->SetOption(d, DECODER_OPTION_TRACE_LEVEL, &level);
	SDecodingParam p;
	memset(&p, 0, sizeof p);
	p.eEcActiveIdc = ERROR_CON_DISABLE;
	p.sVideoProperty.eVideoBsType = VIDEO_BITSTREAM_AVC;
	long rc = (*d)->Initialize(d, &p);
	if (rc != 0) {
		WelsDestroyDecoder(d);
		*pd = NULL;
		return (int)rc;
	}
	return 0;
}

static void dc_dec_close(ISVCDecoder* d) {
	(*d)->Uninitialize(d);
	WelsDestroyDecoder(d);
}

static int dc_decode(ISVCDecoder* d, const uint8_t* src, int n, SBufferInfo* info) {
	unsigned char* dst[3] = {0};
	memset(info, 0, sizeof *info);
	return (int)(*d)->DecodeFrameNoDelay(d, src, n, dst, info);
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

// EncoderName says which H.264 encoder this build uses.
const EncoderName = "OpenH264"

// Available reports whether OpenH264 works here: it opens an encoder the
// first time it is called and remembers the answer.
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	var e *C.ISVCEncoder
	if rc := C.dc_enc_open(&e, 64, 64, DefaultBitrate, DefaultFPS, DefaultMinQP, DefaultMaxQP, 1); rc != 0 {
		return fmt.Errorf("initialising OpenH264: error %d", int(rc))
	}
	C.dc_enc_close(e)
	return nil
})

// session is one OpenH264 encoder at one size, reopened when the size changes,
// with the I420 buffer libyuv fills and the bitstream info OpenH264 fills,
// both in C memory: OpenH264 may hold on to the picture it is given, and cgo
// forbids handing C a struct of Go pointers.
type session struct {
	opt           Options
	enc           *C.ISVCEncoder
	width, height int // the coded (even) size; 0 before the first picture
	i420          *C.uint8_t
	info          *C.SFrameBSInfo
	epoch         time.Time // capture time of the first picture: timestamp 0
	lastTS        int64
}

func newSession(opt Options) (*session, error) {
	info := (*C.SFrameBSInfo)(C.calloc(1, C.sizeof_SFrameBSInfo))
	if info == nil {
		return nil, errors.New("initialising OpenH264: out of memory")
	}
	return &session{opt: opt, info: info}, nil
}

// open (re)initialises the encoder for a w×h picture (even sizes); OpenH264's
// first frame is always an IDR.
func (s *session) open(w, h int) error {
	s.release()
	s.i420 = (*C.uint8_t)(C.malloc(C.size_t(w * h * 3 / 2)))
	if s.i420 == nil {
		return errors.New("initialising OpenH264: out of memory")
	}
	if rc := C.dc_enc_open(&s.enc, C.int(w), C.int(h), C.int(s.opt.Bitrate), C.float(s.opt.FPS), C.int(s.opt.MinQP), C.int(s.opt.MaxQP), C.int(s.opt.TemporalLayers)); rc != 0 {
		s.release()
		return fmt.Errorf("initialising OpenH264 for %dx%d: error %d", w, h, int(rc))
	}
	s.width, s.height = w, h
	return nil
}

// encode converts and encodes p, as an IDR if idr (the first frame at a size
// is one anyway); a skipped frame has no data.
func (s *session) encode(p *media.Picture, idr bool) (accessUnit, error) {
	w, h := evenSize(p.Width, p.Height)
	if s.enc == nil || w != s.width || h != s.height {
		if err := s.open(w, h); err != nil {
			return accessUnit{}, err
		}
	}
	rgba := C.int(0)
	if p.Format == media.RGBA {
		rgba = 1
	}
	if rc := C.dc_convert((*C.uint8_t)(unsafe.Pointer(&p.Pix[0])), C.int(p.Stride), rgba, C.int(w), C.int(h), s.i420); rc != 0 {
		return accessUnit{}, fmt.Errorf("encoding h264: converting to I420: libyuv error %d", int(rc))
	}
	if rc := C.dc_encode(s.enc, s.i420, C.int(w), C.int(h), C.longlong(s.timestamp(p.Captured)), boolInt(idr), s.info); rc != 0 {
		return accessUnit{}, fmt.Errorf("encoding h264: OpenH264 error %d", int(rc))
	}
	switch s.info.eFrameType {
	case C.videoFrameTypeSkip:
		return accessUnit{}, nil
	case C.videoFrameTypeInvalid:
		return accessUnit{}, errors.New("encoding h264: OpenH264 returned no frame")
	}
	n := int(C.dc_size(s.info))
	if n == 0 {
		return accessUnit{}, nil
	}
	data := make([]byte, n)
	C.dc_copy(s.info, (*C.uint8_t)(unsafe.Pointer(&data[0])))
	return accessUnit{data: data, idr: s.info.eFrameType == C.videoFrameTypeIDR, droppable: nonReference(data), width: w, height: h}, nil
}

// setBitrate changes the rate control's target, now if the encoder is open
// and at every later open.
func (s *session) setBitrate(bps int) error {
	s.opt.Bitrate = bps
	if s.enc == nil {
		return nil
	}
	if rc := C.dc_set_bitrate(s.enc, C.int(bps)); rc != 0 {
		return fmt.Errorf("setting the h264 bitrate to %d: OpenH264 error %d", bps, int(rc))
	}
	return nil
}

// timestamp gives OpenH264 the capture time in milliseconds since the first
// picture, which its rate control reads; always increasing, as it wants.
func (s *session) timestamp(captured time.Time) int64 {
	if captured.IsZero() {
		captured = time.Now()
	}
	if s.epoch.IsZero() {
		s.epoch, s.lastTS = captured, 0
		return 0
	}
	ts := captured.Sub(s.epoch).Milliseconds()
	if ts <= s.lastTS {
		ts = s.lastTS + 1
	}
	s.lastTS = ts
	return ts
}

// release frees the encoder and its picture buffer, not the bitstream info.
func (s *session) release() {
	if s.enc != nil {
		C.dc_enc_close(s.enc)
		s.enc = nil
	}
	if s.i420 != nil {
		C.free(unsafe.Pointer(s.i420))
		s.i420 = nil
	}
	s.width, s.height = 0, 0
}

func (s *session) close() {
	s.release()
	if s.info != nil {
		C.free(unsafe.Pointer(s.info))
		s.info = nil
	}
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// convert fills dst (w*h*3/2 bytes) with p's even-sized part as I420; for
// the benchmark of libyuv alone.
func convert(p *media.Picture, dst []byte) error {
	w, h := evenSize(p.Width, p.Height)
	if len(dst) < w*h*3/2 {
		return errors.New("converting to I420: buffer too small")
	}
	rgba := C.int(0)
	if p.Format == media.RGBA {
		rgba = 1
	}
	if rc := C.dc_convert((*C.uint8_t)(unsafe.Pointer(&p.Pix[0])), C.int(p.Stride), rgba, C.int(w), C.int(h), (*C.uint8_t)(unsafe.Pointer(&dst[0]))); rc != 0 {
		return fmt.Errorf("converting to I420: libyuv error %d", int(rc))
	}
	return nil
}

// Decoder decodes H.264 with OpenH264's decoder, for tests and measurements
// (a viewer's browser does the real decoding). It is used from one goroutine
// at a time.
type Decoder struct {
	d    *C.ISVCDecoder
	info *C.SBufferInfo
}

// NewDecoder returns a decoder, or ErrUnavailable in a build without OpenH264.
func NewDecoder() (*Decoder, error) {
	info := (*C.SBufferInfo)(C.calloc(1, C.sizeof_SBufferInfo))
	if info == nil {
		return nil, errors.New("initialising the OpenH264 decoder: out of memory")
	}
	d := &Decoder{info: info}
	if rc := C.dc_dec_open(&d.d); rc != 0 {
		C.free(unsafe.Pointer(info))
		return nil, fmt.Errorf("initialising the OpenH264 decoder: error %d", int(rc))
	}
	return d, nil
}

// Decode decodes one Annex-B access unit and returns its picture, copied out
// of the decoder; nil with a nil error when the data held no picture.
func (d *Decoder) Decode(au []byte) (*image.YCbCr, error) {
	if d.d == nil {
		return nil, errors.New("decoding h264: decoder closed")
	}
	if len(au) == 0 {
		return nil, nil
	}
	// The decoder copies what it is given into its own buffer before parsing.
	if rc := C.dc_decode(d.d, (*C.uint8_t)(unsafe.Pointer(&au[0])), C.int(len(au)), d.info); rc != 0 {
		return nil, fmt.Errorf("decoding h264: OpenH264 state %#x", int(rc))
	}
	if d.info.iBufferStatus != 1 {
		return nil, nil
	}
	buf := (*C.SSysMEMBuffer)(unsafe.Pointer(&d.info.UsrData))
	w, h := int(buf.iWidth), int(buf.iHeight)
	ys, cs := int(buf.iStride[0]), int(buf.iStride[1])
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	plane := func(dst []byte, dstStride int, src *C.uchar, srcStride, pw, ph int) {
		s := unsafe.Slice((*byte)(unsafe.Pointer(src)), (ph-1)*srcStride+pw)
		for y := range ph {
			copy(dst[y*dstStride:y*dstStride+pw], s[y*srcStride:])
		}
	}
	plane(img.Y, img.YStride, d.info.pDst[0], ys, w, h)
	plane(img.Cb, img.CStride, d.info.pDst[1], cs, (w+1)/2, (h+1)/2)
	plane(img.Cr, img.CStride, d.info.pDst[2], cs, (w+1)/2, (h+1)/2)
	return img, nil
}

// Close frees the decoder. Closing twice is fine.
func (d *Decoder) Close() error {
	if d.d != nil {
		C.dc_dec_close(d.d)
		d.d = nil
	}
	if d.info != nil {
		C.free(unsafe.Pointer(d.info))
		d.info = nil
	}
	return nil
}
