package pulse

import (
	"encoding/binary"
	"errors"
	"net"
	"time"
	"unicode/utf8"
)

// opcode is the RFC 6455 opcode of a frame the writer sends.
type opcode int

const (
	opText   opcode = 1
	opBinary opcode = 2
	opClose  opcode = 8
	opPing   opcode = 9
	opPong   opcode = 10
)

// maxCloseReason is the longest reason that fits a close frame (125 - 2).
const maxCloseReason = 123

// outbox is what a connection has to write; Conn.mu guards it. Data messages
// wait in a queue bounded by Options.QueueSize; control frames are flags, so
// a flood of pings cannot grow it.
type outbox struct {
	data             []Message // queued messages are data[head:]
	head             int
	ping             bool   // a heartbeat is due
	pongFrame        []byte // payload for pongFramePending
	pongFramePending bool   // answer the peer's ping frame
	pongMessage      bool   // answer the peer's text or app ping
	closeSent        bool   // the close frame is out, or can no longer be: write nothing more
}

func (o *outbox) len() int { return len(o.data) - o.head }

func (o *outbox) push(m Message) {
	if len(o.data) == cap(o.data) && o.head > 0 {
		n := copy(o.data, o.data[o.head:])
		clear(o.data[n:])
		o.data, o.head = o.data[:n], 0
	}
	o.data = append(o.data, m)
}

func (o *outbox) pop() Message {
	m := o.data[o.head]
	o.data[o.head] = Message{}
	o.head++
	if o.head == len(o.data) {
		o.data, o.head = o.data[:0], 0
		if cap(o.data) > 64 {
			o.data = nil // give a burst's memory back once it is written
		}
	}
	return m
}

func (o *outbox) drop() { o.data, o.head = nil, 0 }

// frame is one unit of work for the writer.
type frame struct {
	op        opcode
	data      []byte
	heartbeat bool          // a heartbeat: note when it left, for the RTT
	linger    time.Duration // for a close frame: how long reads go on after it
}

// kickLocked starts the writer unless it runs. The writer goroutine exists
// only while there is something to write, so an idle connection has none;
// being the only writer, it never interleaves frames.
func (c *Conn) kickLocked() {
	if c.writing || c.stopped || c.out.closeSent {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

func (c *Conn) writeLoop() {
	defer c.writers.Done()
	for {
		f, ok := c.nextFrame()
		if !ok {
			return
		}
		if err := c.writeFrame(f); err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// nextFrame takes the next frame to write: answers to the peer first, then
// the heartbeat, the queued messages, and last the close frame.
func (c *Conn) nextFrame() (frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := &c.out
	switch {
	case o.closeSent:
	case o.pongFramePending:
		f := frame{op: opPong, data: o.pongFrame}
		o.pongFrame, o.pongFramePending = nil, false
		return f, true
	case o.ping:
		o.ping = false
		return c.heartbeatFrame(), true
	case o.pongMessage:
		o.pongMessage = false
		return c.pongMessageFrame(), true
	case o.len() > 0:
		m := o.pop()
		c.wakeLocked()
		return frame{op: opcode(m.Type), data: m.Data}, true
	case c.closing != nil:
		o.closeSent = true
		return frame{op: opClose, data: closePayload(c.closing.err), linger: c.closing.linger}, true
	}
	c.writing = false
	return frame{}, false
}

func (c *Conn) heartbeatFrame() frame {
	switch c.kind {
	case HeartbeatApp:
		return frame{op: opText, data: appPing, heartbeat: true}
	case HeartbeatText:
		return frame{op: opText, data: textPing, heartbeat: true}
	}
	return frame{op: opPing, heartbeat: true}
}

func (c *Conn) pongMessageFrame() frame {
	if c.kind == HeartbeatApp {
		return frame{op: opText, data: appPong}
	}
	return frame{op: opText, data: textPong}
}

func (c *Conn) writeFrame(f frame) error {
	timeout := c.srv.opts.WriteTimeout
	if f.op == opClose {
		timeout = min(timeout, closeGrace)
	}
	if f.heartbeat {
		c.pingSent.Store(int64(c.srv.wheel.since()))
	}
	if err := c.t.write(f.op, f.data, time.Now().Add(timeout)); err != nil {
		return err
	}
	if f.heartbeat {
		c.srv.opts.Observer.PingSent(c.kind)
	}
	if f.op == opClose {
		c.t.endReads(f.linger)
	}
	return nil
}

// writeFailed ends a connection whose socket cannot be written: a missed
// deadline means a peer too slow to keep up, whose socket is reset so that
// the kernel does not go on holding what it could not send.
func (c *Conn) writeFailed(err error) {
	code, label, end := CloseAbnormal, DisconnectWriteError, c.t.close
	if isTimeout(err) {
		code, label, end = CloseSlowConsumer, DisconnectWriteTimeout, c.t.abort
	}
	c.mu.Lock()
	if c.closing == nil {
		c.closing = &closeRequest{err: newCloseError(code, "write: "+err.Error()), label: label}
		c.wakeLocked()
	}
	c.out.drop()
	c.out.closeSent = true
	c.writing = false
	c.mu.Unlock()
	end()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closePayload encodes the body of a close frame: the code and the reason,
// cut to fit. A peer's close without a code is answered without one.
func closePayload(e *CloseError) []byte {
	if !sendable(e.Code) {
		return nil
	}
	reason := e.Reason
	if len(reason) > maxCloseReason {
		cut := maxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(e.Code))
	return append(b, reason...)
}

// sendable reports whether code may appear in a close frame (RFC 6455 7.4).
func sendable(code CloseCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
