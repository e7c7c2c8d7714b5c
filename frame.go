package pulse

import (
	"encoding/binary"
	"net"
	"sync"
	"unicode/utf8"
)

// RFC 6455 framing written by pulse itself: the encoder both engines use
// to flush a batch of frames in one write, and the streaming parser of the
// epoll engine.

// inlinePayload is the largest payload copied beside its frame header in
// the flush buffer; larger ones are written from where they are, as their
// own element of a vectored write.
const inlinePayload = 2 << 10

// maxFlushBuffer is the largest flush buffer kept for reuse.
const maxFlushBuffer = 64 << 10

// flush is one batch of frames laid out for a single write: buf holds the
// headers and small payloads, vec the pieces in order. Flushes are pooled,
// so an idle connection holds none.
type flush struct {
	buf []byte
	vec net.Buffers
	z   []byte // compressed payloads (permessage-deflate)
	zAt []int  // for each payload in z: the frame's index, its start and end
}

var flushes = sync.Pool{New: func() any { return &flush{buf: make([]byte, 0, 4<<10)} }}

// encodeFrames returns fs encoded as server frames (final, unmasked) in a
// pooled flush; the caller puts it back with release.
func encodeFrames(fs []frame) *flush {
	f := flushes.Get().(*flush)
	f.compress(fs)
	inline := 0
	for _, fr := range fs {
		inline += maxHeader
		if len(fr.data) <= inlinePayload {
			inline += len(fr.data)
		}
	}
	if cap(f.buf) < inline {
		f.buf = make([]byte, 0, inline) // the slices in vec must not move
	}
	start := 0
	for _, fr := range fs {
		if h := len(f.buf); fr.op != opRaw {
			f.buf = appendHeader(f.buf, fr.op, len(fr.data))
			if fr.rsv1 {
				f.buf[h] |= rsv1Bit
			}
		}
		if len(fr.data) <= inlinePayload {
			f.buf = append(f.buf, fr.data...)
			continue
		}
		f.vec = append(f.vec, f.buf[start:], fr.data)
		start = len(f.buf)
	}
	if start < len(f.buf) {
		f.vec = append(f.vec, f.buf[start:])
	}
	return f
}

// rsv1Bit marks a compressed message's first frame (RFC 7692 6).
const rsv1Bit = 0x40

// compress replaces the payload of each frame marked compress by its
// compressed form within the frame's window, made into f.z or shared by a
// prepared message, and marks it rsv1; a payload deflate does not shorten
// stays as it is.
func (f *flush) compress(fs []frame) {
	for i := range fs {
		fr := &fs[i]
		switch {
		case fr.compress == 0:
		case fr.prep != nil:
			if z, ok := fr.prep.compressed(fr.data, fr.compress); ok {
				fr.data, fr.rsv1 = z, true
			}
		default:
			start := len(f.z)
			z, ok := deflate(f.z, fr.data, fr.compress)
			if !ok {
				f.z = z[:start]
				continue
			}
			f.z, fr.rsv1 = z, true
			f.zAt = append(f.zAt, i, start, len(z))
		}
	}
	for j := 0; j < len(f.zAt); j += 3 { // f.z has stopped moving
		fs[f.zAt[j]].data = f.z[f.zAt[j+1]:f.zAt[j+2]]
	}
}

// bytes returns the whole batch as one slice, copying only when a large
// payload made it several pieces.
func (f *flush) bytes() []byte {
	if len(f.vec) == 1 {
		return f.vec[0]
	}
	var b []byte
	for _, v := range f.vec {
		b = append(b, v...)
	}
	return b
}

func (f *flush) release() {
	clear(f.vec[:cap(f.vec)]) // drop the references to payloads
	f.vec = f.vec[:0]
	f.buf = f.buf[:0]
	f.z, f.zAt = f.z[:0], f.zAt[:0]
	if cap(f.z) > maxFlushBuffer {
		f.z = nil
	}
	if cap(f.buf) <= maxFlushBuffer {
		flushes.Put(f)
	}
}

// maxHeader is the longest header of a server frame: 2 bytes and a 64-bit length.
const maxHeader = 10

// appendHeader appends the header of a final, unmasked frame of n bytes.
func appendHeader(b []byte, op opcode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// frameError is a peer's breach of RFC 6455 or of the size limit: the
// connection is closed with its code.
type frameError struct {
	code   CloseCode // 1002, 1007 or 1009
	reason string
}

func (e *frameError) Error() string { return "pulse: " + e.reason }

// label is the reason Observer.Closed is told of a connection closed for e.
func (e *frameError) label() DisconnectReason {
	switch e.code {
	case CloseMessageTooBig:
		return DisconnectMessageTooBig
	case CloseInvalidPayload:
		return DisconnectInvalidPayload
	}
	return DisconnectProtocolError
}

func protocolError(reason string) *frameError {
	return &frameError{code: CloseProtocolError, reason: reason}
}

var (
	errInvalidUTF8 = &frameError{code: CloseInvalidPayload, reason: "invalid UTF-8 in text message"}
	errTooBig      = &frameError{code: CloseMessageTooBig, reason: "message too big"}
)

// frameSink receives what a frameReader parses. message owns data; ping's
// and pong's payloads are valid only during the call. A compressed
// message comes as it arrived, for the sink to inflate (inflateMessage)
// off the reader's goroutine.
type frameSink interface {
	message(op opcode, data []byte, compressed bool)
	ping(payload []byte)
	pong()
	peerClose(code CloseCode, reason string)
}

// frameReader parses the frames a client sends, as the bytes arrive, in
// any pieces: it keeps no read buffer, only the few header bytes of a
// frame cut by a read and the data of the message in progress. Text is
// checked for UTF-8 as it arrives, so invalid bytes fail the connection
// at once (1007); a data frame whose announced length takes its message
// past limit fails at its header (1009); everything else RFC 6455 forbids
// fails with 1002, and so does RSV1 anywhere but on the first frame of a
// message once permessage-deflate is negotiated (RFC 7692 6.1). A
// compressed message is handed over as it came, for the sink to inflate
// and check. Owned by the goroutine that feeds it.
type frameReader struct {
	limit   int64 // the largest message, as it arrives (the sink bounds it inflated)
	deflate bool  // permessage-deflate was negotiated: RSV1 marks a compressed message

	// The frame being read.
	hdr     [14]byte // a header cut by a read
	hdrN    uint8
	inFrame bool // the header is in; left payload bytes remain
	op      opcode
	fin     bool
	mask    [4]byte
	maskAt  uint8 // the mask byte that applies to the next payload byte
	left    int64
	ctrl    []byte // a control frame's payload cut by a read

	// The message being read.
	msgOp      opcode // 0 between messages
	msg        []byte
	checked    int  // msg[:checked] is whole, valid UTF-8
	compressed bool // msg is compressed: inflated and checked once whole
	done       bool // a close frame came: nothing more is read
}

// feed parses data, which it unmasks in place, calling s for each
// complete message and control frame. After an error or a close frame it
// reads nothing more.
func (r *frameReader) feed(data []byte, s frameSink) error {
	for len(data) > 0 && !r.done {
		if !r.inFrame {
			n, err := r.readHeader(data)
			data = data[n:]
			if err != nil {
				r.done = true
				return err
			}
			if !r.inFrame || r.left > 0 {
				continue
			}
		}
		k := min(r.left, int64(len(data)))
		chunk := data[:k]
		data = data[k:]
		r.unmask(chunk)
		r.left -= k
		if err := r.payload(chunk, s); err != nil {
			r.done = true
			return err
		}
	}
	return nil
}

// readHeader takes the bytes of a frame header from data and returns how
// many it took; once the header is whole, the frame begins.
func (r *frameReader) readHeader(data []byte) (int, error) {
	need := 2
	if r.hdrN >= 2 {
		need = headerLen(r.hdr[1])
	}
	n := copy(r.hdr[r.hdrN:need], data)
	r.hdrN += uint8(n)
	if int(r.hdrN) < need {
		return n, nil
	}
	if need == 2 {
		if r.hdr[1]&0x80 == 0 {
			return n, protocolError("client frame not masked") // no mask key will come
		}
		m, err := r.readHeader(data[n:]) // now the length's size is known
		return n + m, err
	}
	r.hdrN = 0
	return n, r.begin()
}

// headerLen is the length of a client frame header whose second byte is b1.
func headerLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// begin checks the header in r.hdr and starts its frame.
func (r *frameReader) begin() error {
	h := r.hdr[:headerLen(r.hdr[1])]
	r.fin, r.op = h[0]&0x80 != 0, opcode(h[0]&0x0f)
	rsv1 := h[0]&rsv1Bit != 0
	if h[0]&0x30 != 0 || rsv1 && !r.deflate {
		return protocolError("reserved bits set without an extension")
	}
	if rsv1 && r.op != opText && r.op != opBinary {
		return protocolError("RSV1 set on a control or continuation frame") // RFC 7692 6.1
	}
	switch n := h[1] & 0x7f; n {
	case 126:
		r.left = int64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		u := binary.BigEndian.Uint64(h[2:])
		if u>>63 != 0 {
			return protocolError("frame length has its top bit set")
		}
		r.left = int64(u)
	default:
		r.left = int64(n)
	}
	copy(r.mask[:], h[len(h)-4:])
	r.maskAt = 0
	if err := r.check(); err != nil {
		return err
	}
	r.inFrame = true
	if r.op == opText || r.op == opBinary {
		r.msgOp, r.checked, r.compressed = r.op, 0, rsv1
	}
	return nil
}

// check applies RFC 6455's rules for which frame may come now, and the limit.
func (r *frameReader) check() error {
	switch r.op {
	case opClose, opPing, opPong:
		if !r.fin {
			return protocolError("fragmented control frame")
		}
		if r.left > 125 {
			return protocolError("control frame longer than 125 bytes")
		}
		return nil
	case opContinuation:
		if r.msgOp == 0 {
			return protocolError("continuation frame outside a message")
		}
	case opText, opBinary:
		if r.msgOp != 0 {
			return protocolError("new message inside a fragmented one")
		}
	default:
		return protocolError("reserved opcode")
	}
	if r.left > r.limit-int64(len(r.msg)) {
		return errTooBig
	}
	return nil
}

// unmask applies the client's mask to the next payload bytes.
func (r *frameReader) unmask(b []byte) {
	at := r.maskAt
	for i := range b {
		b[i] ^= r.mask[at&3]
		at++
	}
	r.maskAt = at & 3
}

// payload takes the next piece of the frame's payload and, at the end of
// the frame, handles it.
func (r *frameReader) payload(chunk []byte, s frameSink) error {
	if r.op >= opClose {
		if r.left > 0 || r.ctrl != nil {
			r.ctrl = append(r.ctrl, chunk...)
			if r.left > 0 {
				return nil
			}
			chunk, r.ctrl = r.ctrl, nil
		}
		r.inFrame = false
		return r.control(chunk, s)
	}
	r.msg = append(r.msg, chunk...)
	if r.msgOp == opText && !r.compressed {
		n, ok := validPrefix(r.msg[r.checked:])
		if !ok {
			return errInvalidUTF8
		}
		r.checked += n
	}
	if r.left > 0 {
		return nil
	}
	r.inFrame = false
	if !r.fin {
		return nil
	}
	if r.msgOp == opText && !r.compressed && r.checked != len(r.msg) {
		return errInvalidUTF8 // it ends inside a character
	}
	op, msg, compressed := r.msgOp, r.msg, r.compressed
	r.msgOp, r.msg, r.checked, r.compressed = 0, nil, 0, false
	s.message(op, msg, compressed)
	return nil
}

// control handles a whole control frame.
func (r *frameReader) control(payload []byte, s frameSink) error {
	switch r.op {
	case opPing:
		s.ping(payload)
	case opPong:
		s.pong()
	case opClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			return err
		}
		r.done = true
		s.peerClose(code, reason)
	}
	return nil
}

// parseClose reads a close frame's body (RFC 6455 5.5.1, 7.4).
func parseClose(p []byte) (CloseCode, string, error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, "", nil
	case len(p) == 1:
		return 0, "", protocolError("close frame of one byte")
	}
	code := CloseCode(binary.BigEndian.Uint16(p))
	if !sendable(code) {
		return 0, "", protocolError("close code " + code.String() + " may not be sent")
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &frameError{code: CloseInvalidPayload, reason: "invalid UTF-8 in close reason"}
	}
	return code, string(p[2:]), nil
}

// validPrefix returns the length of b's longest prefix of whole UTF-8
// characters, and false if b holds bytes that no continuation can make
// valid. A character cut at the end of b is not an error.
func validPrefix(b []byte) (int, bool) {
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return i, true // FullRune is true for any invalid prefix, so this one can still be completed
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i, false
		}
		i += size
	}
	return i, true
}
