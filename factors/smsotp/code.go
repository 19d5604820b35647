package smsotp

import (
	"errors"
	"fmt"
	"io"
)

// rejectFrom is the first byte value generateCode discards: 250 is the largest
// multiple of 10 that fits in a byte, so b%10 is uniform over the bytes kept.
const rejectFrom = 250

// maxCodeReads caps the reads for one code. A working source rejects 6 bytes
// in 256; needing this many rounds means it is broken, not unlucky.
const maxCodeReads = 64

var errBadRandom = errors.New("smsotp: random source keeps returning rejected bytes")

// generateCode returns n decimal digits from r without modulo bias, by
// rejection sampling: bytes ≥ 250 are thrown away and the rest taken modulo 10.
func generateCode(r io.Reader, n int) (string, error) {
	code := make([]byte, 0, n)
	buf := make([]byte, n)
	for range maxCodeReads {
		need := buf[:n-len(code)]
		if _, err := io.ReadFull(r, need); err != nil {
			return "", fmt.Errorf("smsotp: generate code: %w", err)
		}
		for _, b := range need {
			if b < rejectFrom {
				code = append(code, '0'+b%10)
			}
		}
		if len(code) == n {
			return string(code), nil
		}
	}
	return "", errBadRandom
}
