package pulse

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// opcode is the RFC 6455 opcode of a frame the writer sends.
type opcode int

const (
	opContinuation opcode = 0
	opText         opcode = 1
	opBinary       opcode = 2
	opClose        opcode = 8
	opPing         opcode = 9
	opPong         opcode = 10

	// opRaw is no frame: its data is written as it is (the 101 response).
	opRaw opcode = -1
)

// maxCloseReason is the longest reason that fits a close frame (125 - 2).
const maxCloseReason = 123

// outbox is what a connection has to write; Conn.mu guards it. Data messages
// wait in a queue bounded by Options.QueueSize; the heartbeat and the answer
// to a text or app ping are flags; the answers to ping frames wait in their
// own queue, bounded by maxPendingPongs, so a flood of pings cannot grow it.
type outbox struct {
	response    *[]byte   // the upgrade's 101 response, held to go out first with what follows it; nil once taken
	data        []Message // queued messages are data[head:]
	head        int
	pongs       [][]byte // payloads of the peer's ping frames, each owed its own pong, oldest first
	ping        bool     // a heartbeat is due
	pongMessage bool     // answer the peer's text or app ping
	closeSent   bool     // the close frame is out, or can no longer be: write nothing more
	messageSent bool     // a message has been taken for writing: the first (a welcome) went first
}

// maxPendingPongs is how many of the peer's ping frames may wait for their
// pong. Beyond it the oldest is dropped: RFC 6455 lets an endpoint answer
// only the latest of several pings, and a peer that pings faster than it
// reads gets no more memory for it.
const maxPendingPongs = 16

// owePong queues the pong for a ping frame with payload p.
func (o *outbox) owePong(p []byte) {
	if len(o.pongs) == maxPendingPongs {
		copy(o.pongs, o.pongs[1:])
		o.pongs = o.pongs[:maxPendingPongs-1]
	}
	o.pongs = append(o.pongs, p)
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

// frame is one frame for the writer to send.
type frame struct {
	op        opcode
	data      []byte
	heartbeat bool          // a heartbeat: note when it left, for the RTT
	linger    time.Duration // for a close frame: how long reads go on after it
	compress  deflateBits   // a data message to send compressed within this window (permessage-deflate); 0: as it is
	rsv1      bool          // data is compressed: set RSV1 (encodeFrames sets it)
	prep      *prepared     // the message's shared compressed form, if prepared
}

// Bounds of one batch: the frames the writer takes from the outbox and
// flushes in a single write.
const (
	maxBatchFrames = 64
	maxBatchBytes  = 256 << 10 // of data messages; one larger message goes alone
)

// batches holds the writers' frame arrays, so a writer allocates nothing.
var batches = sync.Pool{New: func() any { return new([maxBatchFrames]frame) }}

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

// writeLoop flushes batches until the outbox is empty: whatever queued up
// while a write was under way goes out in the next write, together.
func (c *Conn) writeLoop() {
	defer c.writers.Done()
	arr := batches.Get().(*[maxBatchFrames]frame)
	defer batches.Put(arr)
	for {
		fs := c.nextBatch(arr[:0])
		if len(fs) == 0 {
			return
		}
		err := c.writeBatch(fs)
		clear(fs) // the array goes back to the pool without payloads
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// nextBatch takes what is to be written next, in the order it must go:
// answers to the peer first, then the heartbeat, the queued messages, and
// last the close frame, once nothing is queued before it. The connection's
// first messages, though, go before everything but the 101 response: what
// the session's Open sent (a welcome) is the first frame the peer reads.
// It returns no frames, and the writer ends, when there is nothing to
// write.
func (c *Conn) nextBatch(fs []frame) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := &c.out
	if o.closeSent {
		c.writing = false
		return nil
	}
	if o.response != nil {
		fs = append(fs, frame{op: opRaw, data: *o.response})
		o.response = nil
	}
	first := !o.messageSent && o.len() > 0
	if first {
		fs = c.takeMessagesLocked(fs)
		o.messageSent = true
	}
	for _, p := range o.pongs {
		fs = append(fs, frame{op: opPong, data: p})
	}
	o.pongs = nil
	if o.ping {
		o.ping = false
		fs = append(fs, c.heartbeatFrame())
	}
	if o.pongMessage {
		o.pongMessage = false
		fs = append(fs, c.pongMessageFrame())
	}
	if !first {
		fs = c.takeMessagesLocked(fs)
	}
	if c.closing != nil && o.len() == 0 && len(fs) < cap(fs) {
		o.closeSent = true
		fs = append(fs, frame{op: opClose, data: closePayload(c.closing.err), linger: c.closing.linger})
	}
	if len(fs) == 0 {
		c.writing = false
	}
	return fs
}

// takeMessagesLocked moves queued messages into the batch, within its bounds.
func (c *Conn) takeMessagesLocked(fs []frame) []frame {
	size, took := 0, false
	for c.out.len() > 0 && len(fs) < cap(fs) && size < maxBatchBytes {
		m := c.out.pop()
		compress := deflateBits(0)
		if c.deflateMin > 0 && len(m.Data) >= c.deflateMin {
			compress = c.deflateWindow
		}
		fs = append(fs, frame{op: opcode(m.Type), data: m.Data, compress: compress, prep: m.prep})
		size += len(m.Data)
		took = true
	}
	if took {
		c.wakeLocked()
	}
	return fs
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

// writeBatch writes fs in one go, within WriteTimeout, or closeGrace when
// it ends with the close frame.
func (c *Conn) writeBatch(fs []frame) error {
	deadline, heartbeat := c.beforeWrite(fs)
	if err := c.t.writeFrames(fs, deadline); err != nil {
		return err
	}
	c.afterWrite(fs[len(fs)-1], heartbeat)
	return nil
}

// beforeWrite returns the deadline of a batch and whether it carries the
// heartbeat, whose sending time it notes for the RTT.
func (c *Conn) beforeWrite(fs []frame) (time.Time, bool) {
	timeout := c.srv.opts.WriteTimeout
	if fs[len(fs)-1].op == opClose {
		timeout = min(timeout, closeGrace)
	}
	heartbeat := false
	for _, f := range fs {
		heartbeat = heartbeat || f.heartbeat
	}
	if heartbeat {
		c.pingSent.Store(int64(c.srv.wheel.since()))
	}
	return time.Now().Add(timeout), heartbeat
}

// afterWrite counts the heartbeat and, after the close frame, lets reads
// go on only for its linger.
func (c *Conn) afterWrite(last frame, heartbeat bool) {
	if heartbeat {
		c.srv.opts.Observer.PingSent(c.kind)
	}
	if last.op == opClose {
		c.t.endReads(last.linger)
	}
}

// inlineWriter is a transport whose writes can be tried without blocking:
// tryWriteFrames writes what the socket takes now and returns a function
// that writes the rest, or nil when nothing is left.
type inlineWriter interface {
	tryWriteFrames(fs []frame) (rest func(deadline time.Time) error, err error)
}

// beat queues the heartbeat, from the wheel's goroutine. On a transport
// that can try a write without blocking, when no writer runs, the wheel
// writes it there and then: no goroutine starts for a heartbeat the socket
// takes at once. It reports false once the connection is closing.
func (c *Conn) beat() bool {
	c.mu.Lock()
	if c.closing != nil {
		c.mu.Unlock()
		return false
	}
	c.out.ping = true
	iw, ok := c.t.(inlineWriter)
	if !ok || c.writing || c.stopped || c.out.closeSent {
		c.kickLocked()
		c.mu.Unlock()
		return true
	}
	c.writing = true
	c.writers.Add(1)
	c.mu.Unlock()
	c.writeInline(iw)
	return true
}

// writeResponse has the 101 response written, after Open, unless the
// writer has taken it already with what Open sent. The writer goroutine
// writes it, not the caller: the request's goroutine, deep in net/http's
// stack, would outgrow its stack in the writer's frames, and the copy
// costs more than a goroutine.
func (c *Conn) writeResponse() {
	c.mu.Lock()
	if c.out.response != nil {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// writeInline writes one batch as the writer, without blocking; what the
// socket does not take, and whatever queued meanwhile, a writer goroutine
// finishes.
func (c *Conn) writeInline(iw inlineWriter) {
	arr := batches.Get().(*[maxBatchFrames]frame)
	fs := c.nextBatch(arr[:0])
	if len(fs) == 0 {
		batches.Put(arr)
		c.writers.Done()
		return
	}
	deadline, heartbeat := c.beforeWrite(fs)
	last := fs[len(fs)-1]
	rest, err := iw.tryWriteFrames(fs)
	clear(fs)
	batches.Put(arr)
	switch {
	case err != nil:
		c.writeFailed(err)
		c.writers.Done()
	case rest != nil:
		go c.finishWrite(rest, deadline, last, heartbeat)
	default:
		c.afterWrite(last, heartbeat)
		c.writeOnIfPending()
	}
}

// finishWrite writes the rest of a batch, then goes on as the writer.
func (c *Conn) finishWrite(rest func(time.Time) error, deadline time.Time, last frame, heartbeat bool) {
	if err := rest(deadline); err != nil {
		c.writeFailed(err)
		c.writers.Done()
		return
	}
	c.afterWrite(last, heartbeat)
	c.writeLoop()
}

// writeOnIfPending ends the writer's turn, or hands it to a writer
// goroutine when more is waiting.
func (c *Conn) writeOnIfPending() {
	c.mu.Lock()
	o := &c.out
	more := !o.closeSent && (o.response != nil || len(o.pongs) > 0 || o.ping || o.pongMessage || o.len() > 0 || c.closing != nil)
	if !more {
		c.writing = false
	}
	c.mu.Unlock()
	if more {
		go c.writeLoop()
		return
	}
	c.writers.Done()
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
