//go:build !linux || !cgo || noopus

package opus

// EncoderName says which Opus encoder this build uses: none.
const EncoderName = "none"

// Available reports why this build cannot encode Opus.
func Available() error { return ErrUnavailable }

type encoder struct{}

func newEncoder(Options, Application) (*encoder, error) { return nil, ErrUnavailable }

func (s *encoder) encode([]int16, int, []byte) (int, error) { return 0, ErrUnavailable }

func (s *encoder) setLoss(int) error { return ErrUnavailable }

func (s *encoder) close() {}

type decoder struct{}

func newDecoder() (*decoder, error) { return nil, ErrUnavailable }

func (s *decoder) decode([]byte, []int16, int) (int, error) { return 0, ErrUnavailable }

func (s *decoder) close() {}
