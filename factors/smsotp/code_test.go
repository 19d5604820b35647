package smsotp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func TestGenerateCodeLengthAndDigits(t *testing.T) {
	for n := 4; n <= 10; n++ {
		for range 200 {
			code, err := generateCode(rand.Reader, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(code) != n {
				t.Fatalf("generateCode(%d) = %q: wrong length", n, code)
			}
			for _, c := range code {
				if c < '0' || c > '9' {
					t.Fatalf("generateCode(%d) = %q: not only digits", n, code)
				}
			}
		}
	}
}

// Every digit, at every position, must be about equally likely. A chi-squared
// statistic with 9 degrees of freedom exceeds 40 with probability ≈ 5e-6 for a
// uniform source; modulo bias on 120 000 digits would push it to about 44.
func TestGenerateCodeDistribution(t *testing.T) {
	const codes, n = 20000, 6
	var counts [n][10]int
	var total [10]int
	for range codes {
		code, err := generateCode(rand.Reader, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range code {
			counts[i][c-'0']++
			total[c-'0']++
		}
	}
	chi2 := func(obs []int, expected float64) float64 {
		var x float64
		for _, o := range obs {
			d := float64(o) - expected
			x += d * d / expected
		}
		return x
	}
	if x := chi2(total[:], codes*n/10); x > 40 {
		t.Errorf("digits are not uniform: chi² = %.1f, counts %v", x, total)
	}
	for i := range n {
		if x := chi2(counts[i][:], codes/10); x > 40 {
			t.Errorf("position %d is not uniform: chi² = %.1f, counts %v", i, x, counts[i])
		}
	}
}

// countingReader serves a fixed byte sequence and records how much was read.
type countingReader struct {
	r    *bytes.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestGenerateCodeRejectsBytesFrom250(t *testing.T) {
	src := []byte{
		255, 7, 250, 3, 252, 249, // kept: 7, 3, 249→9
		0, 253, 1, // kept: 0, 1
		2,      // kept: 2
		99, 98, // never read
	}
	r := &countingReader{r: bytes.NewReader(src)}
	code, err := generateCode(r, 6)
	if err != nil {
		t.Fatal(err)
	}
	if code != "739012" {
		t.Errorf("code = %q, want 739012 (bytes 250, 252, 253, 255 discarded)", code)
	}
	if r.read != 10 {
		t.Errorf("read %d bytes, want 10: only rejected bytes are replaced", r.read)
	}
}

func TestGenerateCodeKeepsEveryByteBelow250(t *testing.T) {
	src := make([]byte, 250)
	for i := range src {
		src[i] = byte(i)
	}
	r := &countingReader{r: bytes.NewReader(src)}
	code, err := generateCode(r, 10)
	if err != nil {
		t.Fatal(err)
	}
	if code != "0123456789" || r.read != 10 {
		t.Errorf("code = %q after %d bytes, want 0123456789 after 10", code, r.read)
	}
}

func TestGenerateCodeBrokenSource(t *testing.T) {
	if _, err := generateCode(bytes.NewReader(nil), 6); !errors.Is(err, io.EOF) {
		t.Errorf("empty source: err = %v, want io.EOF", err)
	}
	if _, err := generateCode(bytes.NewReader([]byte{1, 2, 3}), 6); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: err = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := generateCode(constantReader(0xff), 6); !errors.Is(err, errBadRandom) {
		t.Errorf("source of 0xff: err = %v, want errBadRandom", err)
	}
}

type constantReader byte

func (c constantReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}
