package h264_test

import (
	"bytes"
	"testing"

	"github.com/deskcast/deskcast/codec/h264"
	"github.com/deskcast/deskcast/internal/testenv"
)

// needOpenH264 skips a test in a build without OpenH264, where the fallback
// test checks the error instead.
func needOpenH264(tb testing.TB) {
	tb.Helper()
	if err := h264.Available(); err != nil {
		tb.Skip(err)
	}
}

// scroll is a desktop taller than the screen, shown through a window that
// moves down step rows a frame: a full-screen scroll, the busiest common case.
// fails unless it starts with a start code.
func nalTypes(tb testing.TB, au []byte) []int {
	tb.Helper()
	if !bytes.HasPrefix(au, []byte{0, 0, 1}) && !bytes.HasPrefix(au, []byte{0, 0, 0, 1}) {
		tb.Fatalf("access unit starts % x, not with a start code", au[:min(len(au), 8)])
	}
	var types []int
	for _, nal := range splitNALs(au) {
		types = append(types, int(nal[0]&0x1f))
	}
	return types
}

// splitNALs splits Annex-B bytes at their start codes.
func splitNALs(au []byte) [][]byte {
	var nals [][]byte
	for {
		i := bytes.Index(au, []byte{0, 0, 1})
		if i < 0 {
			return nals
		}
		au = au[i+3:]
		j := bytes.Index(au, []byte{0, 0, 1})
		if j < 0 {
			return append(nals, au)
		}
		nal := au[:j]
		// A 4-byte start code leaves its leading zero on the unit before.
		if len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		nals = append(nals, nal)
		au = au[j:]
	}
}

// source gives the pictures of a test sequence, frame i captured at i/30 s.

// sps is what the tests check in a sequence parameter set.
type sps struct {
	profile, constraints, level     int
	width, height                   int // after cropping
	signalType, fullRange, colorDsc bool
	primaries, transfer, matrix     int
}

// parseSPS reads an SPS NAL unit (header included) of a 4:2:0 baseline
// stream, as far as the VUI's colour description.
func parseSPS(tb testing.TB, nal []byte) sps {
	tb.Helper()
	// Drop the emulation-prevention bytes (00 00 03 → 00 00).
	var rbsp []byte
	for i := 1; i < len(nal); i++ {
		if i >= 3 && nal[i] == 3 && nal[i-1] == 0 && nal[i-2] == 0 {
			continue
		}
		rbsp = append(rbsp, nal[i])
	}
	pos := 0
	bit := func() int {
		if pos/8 >= len(rbsp) {
			tb.Fatalf("SPS % x ends early", nal)
		}
		b := int(rbsp[pos/8]>>(7-pos%8)) & 1
		pos++
		return b
	}
	u := func(n int) int {
		v := 0
		for range n {
			v = v<<1 | bit()
		}
		return v
	}
	ue := func() int {
		zeros := 0
		for bit() == 0 {
			zeros++
		}
		return 1<<zeros - 1 + u(zeros)
	}
	var s sps
	s.profile, s.constraints, s.level = u(8), u(8), u(8)
	ue() // seq_parameter_set_id
	if s.profile != 66 {
		tb.Fatalf("profile_idc %d: this parser reads baseline only", s.profile)
	}
	ue() // log2_max_frame_num_minus4
	if poc := ue(); poc == 0 {
		ue()
	} else if poc == 1 {
		tb.Fatal("pic_order_cnt_type 1")
	}
	ue() // max_num_ref_frames
	u(1) // gaps_in_frame_num_value_allowed_flag
	mbW, mbH := ue()+1, ue()+1
	if u(1) == 0 { // frame_mbs_only_flag
		tb.Fatal("interlaced SPS")
	}
	u(1) // direct_8x8_inference_flag
	s.width, s.height = mbW*16, mbH*16
	if u(1) == 1 { // frame_cropping_flag, in 2-pixel units for 4:2:0
		l, r, t, b := ue(), ue(), ue(), ue()
		s.width -= 2 * (l + r)
		s.height -= 2 * (t + b)
	}
	if u(1) == 0 { // vui_parameters_present_flag
		return s
	}
	if u(1) == 1 { // aspect_ratio_info_present_flag
		if u(8) == 255 {
			u(32)
		}
	}
	if u(1) == 1 { // overscan_info_present_flag
		u(1)
	}
	if s.signalType = u(1) == 1; s.signalType {
		u(3) // video_format
		s.fullRange = u(1) == 1
		if s.colorDsc = u(1) == 1; s.colorDsc {
			s.primaries, s.transfer, s.matrix = u(8), u(8), u(8)
		}
	}
	return s
}

// The test sequences are testenv's, shared with the other video encoders.
type source = testenv.PictureSource

var (
	newScroll = testenv.NewScroll
	newMoving = testenv.NewMoving
	newSlides = testenv.NewSlides
	desktop   = testenv.DesktopPicture
	lumaPSNR  = testenv.LumaPSNR
)
