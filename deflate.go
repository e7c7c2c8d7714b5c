package pulse

import (
	"compress/flate"
	"errors"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/pulse-go/pulse/internal/stats"
)

// permessage-deflate (RFC 7692), the same on both engines: the offer is
// chosen by negotiateDeflate (deflate_offer.go), and each message is
// compressed or inflated with a flate writer or reader taken from a pool
// for that message only. Both directions run without context takeover,
// so a connection holds no compression state between messages; what it
// keeps is the window its compressed messages must keep to
// (Conn.deflateWindow).

// DefaultCompressionThreshold is the size of the smallest message sent
// compressed when CompressionOptions.Threshold is zero: below it deflate
// saves a few bytes for the cost of a compressor.
const DefaultCompressionThreshold = 512

// compressionLevel is the flate level of every compressed message: the
// fastest, since a server compresses for many connections.
const compressionLevel = flate.BestSpeed

// CompressionOptions configures permessage-deflate (RFC 7692). Messages
// are compressed without context takeover in both directions, so an idle
// connection holds no compressor and no window. A client may ask for a
// window smaller than 32 KiB (server_max_window_bits, 8 to 15), which the
// server's messages then keep to.
type CompressionOptions struct {
	// Threshold is the size in bytes of the smallest data message sent
	// compressed; smaller ones, and every control frame, go as they are
	// (1 compresses every message but the empty one). Zero means
	// DefaultCompressionThreshold (512).
	Threshold int
}

// deflateTail is what RFC 7692 7.2.1 strips from the end of a compressed
// message, and 7.2.2 appends again before inflating it.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is deflateTail and an empty final block, so that the reader
// ends a message with io.EOF rather than io.ErrUnexpectedEOF.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflater is a pooled flate writer that appends to out.
type deflater struct {
	fw  *flate.Writer
	out []byte
}

func (d *deflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
}

func deflaterPool(level int) *sync.Pool {
	return &sync.Pool{New: func() any {
		d := new(deflater)
		d.fw, _ = flate.NewWriter(d, level) // the level is valid
		return d
	}}
}

// The pooled compressors: deflaters find back references, huffmen only
// code bytes (no back reference, so any window holds their output).
var (
	deflaters = deflaterPool(compressionLevel)
	huffmen   = deflaterPool(flate.HuffmanOnly)
)

// minPieceBits is the smallest window whose pieces deflate compresses
// with back references (1 KiB); below it, huffmen code the message.
const minPieceBits = 10

// deflate appends the compressed form of src to dst, as RFC 7692 7.2.1
// frames it (the tail stripped), its back references within a window of
// 2^window bytes; ok is false when it is no shorter than src, which is
// then better sent as it is.
//
// compress/flate's window is 2^maxWindowBits, so a message no longer than
// the window is compressed whole (no distance can pass its length). A
// longer one is compressed in pieces of 2^window bytes, each by a fresh
// compressor, so a reference never reaches into the piece before. Below
// pieces of 2^minPieceBits bytes, the message is Huffman-coded without
// back references instead: each piece pays for a block and its code
// tables, and smaller ones cost far more time than they save bytes
// (README's design note on compression has the figures).
func deflate(dst, src []byte, window deflateBits) (out []byte, ok bool) {
	stats.Deflates.Add(1)
	pool, piece := deflaters, len(src)
	switch {
	case len(src) <= 1<<window || window >= maxWindowBits:
	case window < minPieceBits:
		pool = huffmen
	default:
		piece = 1 << window
	}
	d := pool.Get().(*deflater)
	start := len(dst)
	d.out = dst
	for rest := src; ; {
		k := min(piece, len(rest))
		d.fw.Reset(d)
		d.fw.Write(rest[:k]) // writes to d, which never fails
		d.fw.Flush()         // ends byte-aligned: the next piece follows as a new block
		if rest = rest[k:]; len(rest) == 0 {
			break
		}
	}
	out, d.out = d.out, nil
	pool.Put(d)
	out = out[:len(out)-len(deflateTail)] // a flush ends with the empty stored block
	return out, len(out)-start < len(src)
}

// inflateSource feeds a flate reader a compressed message and then
// inflateTail, as an io.ByteReader so the reader adds no buffer of its own.
type inflateSource struct {
	msg  []byte
	tail []byte
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(s.msg) == 0 {
		s.msg, s.tail = s.tail, nil
	}
	if len(s.msg) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.msg)
	s.msg = s.msg[n:]
	return n, nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.msg) == 0 {
		s.msg, s.tail = s.tail, nil
	}
	if len(s.msg) == 0 {
		return 0, io.EOF
	}
	b := s.msg[0]
	s.msg = s.msg[1:]
	return b, nil
}

// inflater is a pooled flate reader with its source.
type inflater struct {
	src inflateSource
	fr  io.ReadCloser
}

var inflaters = sync.Pool{New: func() any {
	in := new(inflater)
	in.fr = flate.NewReader(&in.src)
	return in
}}

var errBadDeflate = protocolError("invalid permessage-deflate data")

// inflate returns the message compressed in msg, failing with errTooBig
// as soon as it passes limit bytes (so a small bomb never takes more
// memory than the limit allows) and with errBadDeflate for data that is
// not DEFLATE.
func inflate(msg []byte, limit int64) ([]byte, *frameError) {
	in := inflaters.Get().(*inflater)
	defer inflaters.Put(in)
	in.src = inflateSource{msg: msg, tail: inflateTail}
	in.fr.(flate.Resetter).Reset(&in.src, nil)
	defer func() { in.src = inflateSource{} }()
	out := make([]byte, 0, min(int64(max(2*len(msg), 512)), limit+1))
	for {
		if len(out) == cap(out) {
			if int64(len(out)) > limit {
				return nil, errTooBig
			}
			out = growTo(out, min(2*int64(cap(out)), limit+1))
		}
		n, err := in.fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		switch {
		case int64(len(out)) > limit:
			return nil, errTooBig
		case err == io.EOF:
			return out, nil
		case err != nil:
			return nil, errBadDeflate // the data is all in memory: no other fault is possible
		}
	}
}

// inflateMessage returns a compressed message inflated, failing as
// inflate does, and with errInvalidUTF8 for text that is not UTF-8.
func inflateMessage(op opcode, msg []byte, limit int64) ([]byte, *frameError) {
	data, err := inflate(msg, limit)
	if err != nil {
		return nil, err
	}
	if op == opText && !utf8.Valid(data) {
		return nil, errInvalidUTF8
	}
	return data, nil
}

// growTo returns b with capacity n, its bytes kept.
func growTo(b []byte, n int64) []byte {
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}

// deflateError maps a flate reader's error to the close it causes.
func deflateError(err error) error {
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errBadDeflate
	}
	return err
}

// prepared is the compressed form of a Message made once for all its
// copies (Prepare): the first compressed connection that writes it
// compresses it, the others wait for that and share the bytes. A message
// longer than a connection's window is compressed for that window
// (deflate): such forms are made on demand, one per window.
type prepared struct {
	whole preparedForm // for windows at least as long as the message

	mu    sync.Mutex                    // guards small
	small map[deflateBits]*preparedForm // for windows shorter than the message
}

// preparedForm is one compressed form of a prepared message.
type preparedForm struct {
	once sync.Once
	data []byte // nil when compressing does not make it shorter
}

// compressed returns the compressed form of data for a window of
// 2^window bytes, and false when it is better sent as it is.
func (p *prepared) compressed(data []byte, window deflateBits) ([]byte, bool) {
	form := &p.whole
	if len(data) > 1<<window && window < maxWindowBits {
		form = p.form(window)
	}
	form.once.Do(func() {
		if z, ok := deflate(make([]byte, 0, len(data)/2+64), data, window); ok {
			form.data = z[:len(z):len(z)]
		}
	})
	return form.data, form.data != nil
}

// form returns the form for a window shorter than the message.
func (p *prepared) form(window deflateBits) *preparedForm {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.small[window]
	if f == nil {
		if p.small == nil {
			p.small = make(map[deflateBits]*preparedForm)
		}
		f = new(preparedForm)
		p.small[window] = f
	}
	return f
}

// Prepare returns m ready to be sent on many connections, as a hub's
// fan-out does: on connections that compress it, it is compressed once,
// by the first writer that needs it, and the result is shared by every
// copy of the returned Message. A connection whose client asked for a
// window (server_max_window_bits) smaller than the message gets a form
// made once for that window. On other connections it is sent as m is.
// It costs one small allocation; a Message sent once gains nothing.
func Prepare(m Message) Message {
	m.prep = new(prepared)
	return m
}
