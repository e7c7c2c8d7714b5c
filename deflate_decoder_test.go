package pulse

import (
	"errors"
	"fmt"
)

// A DEFLATE decoder (RFC 1951) for tests, which fails any back reference
// farther than its window: Go's compress/flate reads with a 32 KiB window
// whatever was negotiated, so it cannot tell whether the server kept to
// server_max_window_bits. Written from the RFC, after zlib's puff.c.

var errBeyondWindow = errors.New("back reference beyond the window")

// inflateWindowed inflates a message compressed as permessage-deflate
// sends it (RFC 7692 7.2.2: the tail is added here), failing any back
// reference farther than 2^bits bytes; it returns the farthest one.
func inflateWindowed(msg []byte, bits deflateBits) (out []byte, farthest int, err error) {
	d := &windowDecoder{in: append(append([]byte(nil), msg...), inflateTail...), window: 1 << bits}
	for last := false; !last; {
		last = d.bits(1) == 1
		switch d.bits(2) {
		case 0:
			d.stored()
		case 1:
			d.codes(fixedCodes())
		case 2:
			d.codes(d.dynamicCodes())
		default:
			d.fail(errors.New("block type 3"))
		}
		if d.err != nil {
			return nil, d.farthest, d.err
		}
	}
	return d.out, d.farthest, nil
}

// windowDecoder is the decoder's state; err is sticky.
type windowDecoder struct {
	in       []byte
	pos      int  // the byte being read
	bit      uint // the next bit in it, least significant first
	out      []byte
	window   int
	farthest int
	err      error
}

func (d *windowDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// bits reads n bits, least significant first; 0 once out of input.
func (d *windowDecoder) bits(n int) int {
	v := 0
	for i := range n {
		if d.pos >= len(d.in) {
			d.fail(errors.New("unexpected end of data"))
			return 0
		}
		v |= int(d.in[d.pos]>>d.bit&1) << i
		if d.bit++; d.bit == 8 {
			d.bit, d.pos = 0, d.pos+1
		}
	}
	return v
}

// stored copies a stored block.
func (d *windowDecoder) stored() {
	if d.bit != 0 {
		d.bit, d.pos = 0, d.pos+1
	}
	if d.pos+4 > len(d.in) {
		d.fail(errors.New("short stored header"))
		return
	}
	n, nn := int(d.in[d.pos])|int(d.in[d.pos+1])<<8, int(d.in[d.pos+2])|int(d.in[d.pos+3])<<8
	d.pos += 4
	if n != ^nn&0xffff || d.pos+n > len(d.in) {
		d.fail(errors.New("bad stored block"))
		return
	}
	d.out = append(d.out, d.in[d.pos:d.pos+n]...)
	d.pos += n
}

// huffmanCode is a canonical Huffman code: how many codes of each length,
// and the symbols in code order.
type huffmanCode struct {
	count  [16]int
	symbol []int
}

func newHuffmanCode(lengths []int) huffmanCode {
	var h huffmanCode
	var offs [16]int
	for _, l := range lengths {
		h.count[l]++
	}
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]int, len(lengths))
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h
}

// decode reads one symbol of h, its code most significant bit first.
func (d *windowDecoder) decode(h huffmanCode) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16 && d.err == nil; l++ {
		code |= d.bits(1)
		n := h.count[l]
		if code-n < first {
			return h.symbol[index+code-first]
		}
		index, first, code = index+n, (first+n)<<1, code<<1
	}
	d.fail(errors.New("bad Huffman code"))
	return 256
}

func fixedCodes() (lit, dist huffmanCode) {
	lengths := make([]int, 288+30)
	for i := range lengths {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		case i < 288:
			lengths[i] = 8
		default:
			lengths[i] = 5 // the distance code
		}
	}
	return newHuffmanCode(lengths[:288]), newHuffmanCode(lengths[288:])
}

// codeLengthOrder is the order of the code length code's lengths.
var codeLengthOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamicCodes reads the codes of a dynamic block.
func (d *windowDecoder) dynamicCodes() (lit, dist huffmanCode) {
	nlit, ndist, ncode := d.bits(5)+257, d.bits(5)+1, d.bits(4)+4
	var lengths [19]int
	for i := range ncode {
		lengths[codeLengthOrder[i]] = d.bits(3)
	}
	lencode := newHuffmanCode(lengths[:])
	all := make([]int, 0, nlit+ndist)
	for len(all) < nlit+ndist && d.err == nil {
		sym := d.decode(lencode)
		switch {
		case sym < 16:
			all = append(all, sym)
		case sym == 16 && len(all) > 0:
			for range 3 + d.bits(2) {
				all = append(all, all[len(all)-1])
			}
		case sym == 17:
			all = append(all, make([]int, 3+d.bits(3))...)
		case sym == 18:
			all = append(all, make([]int, 11+d.bits(7))...)
		default:
			d.fail(errors.New("bad code lengths"))
		}
	}
	if len(all) != nlit+ndist {
		d.fail(errors.New("code lengths overrun"))
		return lit, dist
	}
	return newHuffmanCode(all[:nlit]), newHuffmanCode(all[nlit:])
}

var (
	lengthBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// codes inflates a block's symbols up to its end, checking each distance.
func (d *windowDecoder) codes(lit, dist huffmanCode) {
	for d.err == nil {
		sym := d.decode(lit)
		if sym < 256 {
			d.out = append(d.out, byte(sym))
			continue
		}
		if sym == 256 {
			return
		}
		if sym -= 257; sym >= 29 {
			d.fail(errors.New("bad length symbol"))
			return
		}
		n := lengthBase[sym] + d.bits(lengthExtra[sym])
		dsym := d.decode(dist)
		if dsym >= 30 {
			d.fail(errors.New("bad distance symbol"))
			return
		}
		back := distBase[dsym] + d.bits(distExtra[dsym])
		d.farthest = max(d.farthest, back)
		switch {
		case back > d.window:
			d.fail(fmt.Errorf("%w: %d bytes back, window %d", errBeyondWindow, back, d.window))
		case back > len(d.out):
			d.fail(fmt.Errorf("%d bytes back, only %d out", back, len(d.out)))
		}
		for i := 0; i < n && d.err == nil; i++ {
			d.out = append(d.out, d.out[len(d.out)-back])
		}
	}
}
