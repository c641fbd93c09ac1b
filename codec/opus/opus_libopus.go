//go:build linux && cgo && !noopus

package opus

/*
#cgo pkg-config: opus
#include <opus.h>

// The ctl macros are variadic, which cgo cannot call: these wrap them.
static int dc_enc_setup(OpusEncoder* e, int bitrate, int loss, int dtx, int complexity) {
	int rc;
	if ((rc = opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(complexity))) != OPUS_OK) return rc;
	if ((rc = opus_encoder_ctl(e, OPUS_SET_BITRATE(bitrate))) != OPUS_OK) return rc;
	if ((rc = opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(loss >= 0))) != OPUS_OK) return rc;
	if ((rc = opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(loss < 0 ? 0 : loss))) != OPUS_OK) return rc;
	if ((rc = opus_encoder_ctl(e, OPUS_SET_DTX(dtx))) != OPUS_OK) return rc;
	return opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_MUSIC));
}

static int dc_enc_set_loss(OpusEncoder* e, int loss) {
	return opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(loss));
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// EncoderName says which Opus encoder this build uses.
const EncoderName = "libopus"

// Available reports whether this build can encode Opus: it can.
func Available() error { return nil }

type encoder struct{ e *C.OpusEncoder }

func opusErr(what string, rc C.int) error {
	return fmt.Errorf("%s: %s", what, C.GoString(C.opus_strerror(rc)))
}

func newEncoder(opt Options, application Application) (*encoder, error) {
	app := C.int(C.OPUS_APPLICATION_AUDIO)
	if application == LowDelay {
		app = C.OPUS_APPLICATION_RESTRICTED_LOWDELAY
	}
	var rc C.int
	e := C.opus_encoder_create(Rate, Channels, app, &rc)
	if rc != C.OPUS_OK || e == nil {
		return nil, opusErr("creating opus encoder", rc)
	}
	dtx := C.int(1)
	if opt.NoDTX {
		dtx = 0
	}
	if rc := C.dc_enc_setup(e, C.int(opt.Bitrate), C.int(opt.LossPercent), dtx, C.int(opt.Complexity)); rc != C.OPUS_OK {
		C.opus_encoder_destroy(e)
		return nil, opusErr("setting up opus encoder", rc)
	}
	return &encoder{e: e}, nil
}

func (s *encoder) encode(pcm []int16, samples int, out []byte) (int, error) {
	n := C.opus_encode(s.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(samples),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out)))
	if n < 0 {
		return 0, opusErr("encoding opus", C.int(n))
	}
	return int(n), nil
}

func (s *encoder) setLoss(percent int) error {
	if rc := C.dc_enc_set_loss(s.e, C.int(percent)); rc != C.OPUS_OK {
		return opusErr("setting opus packet loss", rc)
	}
	return nil
}

func (s *encoder) close() { C.opus_encoder_destroy(s.e) }

type decoder struct{ d *C.OpusDecoder }

func newDecoder() (*decoder, error) {
	var rc C.int
	d := C.opus_decoder_create(Rate, Channels, &rc)
	if rc != C.OPUS_OK || d == nil {
		return nil, opusErr("creating opus decoder", rc)
	}
	return &decoder{d: d}, nil
}

func (s *decoder) decode(pkt []byte, out []int16, samples int) (int, error) {
	var data *C.uchar
	if len(pkt) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&pkt[0]))
	}
	frame := C.int(len(out) / Channels)
	if pkt == nil {
		frame = C.int(samples)
	}
	n := C.opus_decode(s.d, data, C.opus_int32(len(pkt)), (*C.opus_int16)(unsafe.Pointer(&out[0])), frame, 0)
	if n < 0 {
		return 0, opusErr("decoding opus", n)
	}
	return int(n), nil
}

func (s *decoder) close() { C.opus_decoder_destroy(s.d) }
