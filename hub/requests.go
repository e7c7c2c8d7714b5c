package hub

import (
	"context"
	"errors"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// A connection's requests run in order on a worker of their own, so that
// its reader goes on reading: the client's heartbeat answers count as its
// life even while the broker is slow. The worker exists only while there
// are requests, like the connection's writer.
//
// Every request has a deadline, requestTimeout after it was read. A request
// whose deadline passes before the broker answered is answered with
// "unavailable". Its answer waits for room in the connection's queue, so a
// client's own answers never make it a slow consumer; but a client that
// has not read its answers by the deadline is one.
//
// At most maxPending requests wait; the reader stops reading while they
// do, and since each request ends by its deadline, it stops for less than
// requestTimeout: less than the liveness rule's Timeout.

// maxPending bounds the requests of one connection read but not yet taken
// by its worker.
const maxPending = 32

// brokerTimeout bounds each request, and the broker calls of a closing
// connection; requestTimeout lowers it under the liveness rule's Timeout.
const brokerTimeout = 5 * time.Second

// requestTimeout is how long one request of a connection held to timeout
// may take, from being read to being answered: half the Timeout, so the
// reader never waits for the worker long enough to miss a heartbeat.
func requestTimeout(timeout time.Duration) time.Duration {
	return min(brokerTimeout, timeout/2)
}

// pending is one message read from the client, not yet answered.
type pending struct {
	data     []byte
	binary   bool
	deadline time.Time
}

// receive queues a message for the worker, waiting while maxPending wait.
func (s *session) receive(m pulse.Message) {
	p := pending{data: m.Data, binary: m.Type != pulse.MessageText, deadline: time.Now().Add(s.requestTimeout)}
	for {
		s.mu.Lock()
		if len(s.queue) < maxPending {
			s.queue = append(s.queue, p)
			s.startWorkerLocked()
			s.mu.Unlock()
			return
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		<-room // the worker takes the oldest by its deadline
	}
}

func (s *session) startWorkerLocked() {
	if !s.working && !s.ended {
		s.working = true
		s.worker.Go(s.work)
	}
}

// work answers queued requests in order until none is left.
func (s *session) work() {
	for {
		p, ctx, ok := s.next()
		if !ok {
			return
		}
		s.answer(ctx, p)
		s.mu.Lock()
		s.cancel()
		s.cancel = nil
		s.mu.Unlock()
	}
}

// next takes the oldest request and makes its context, or reports false
// and ends the worker when there is none or the session has ended.
func (s *session) next() (pending, context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 || s.ended {
		s.queue = nil
		s.working = false
		return pending{}, nil, false
	}
	p := s.queue[0]
	s.queue[0] = pending{}
	s.queue = s.queue[1:]
	if s.room != nil {
		close(s.room)
		s.room = nil
	}
	var ctx context.Context
	ctx, s.cancel = context.WithDeadline(context.Background(), p.deadline)
	return p, ctx, true
}

// answer decodes and serves one request; its answer, or an error, goes back.
func (s *session) answer(ctx context.Context, p pending) {
	if p.binary {
		s.fail(ctx, 0, badRequest("pulse.v1 messages are JSON text, not binary"))
		return
	}
	req, err := decodeRequest(p.data)
	if err == nil && ctx.Err() != nil {
		err = &protocolError{code: wire.CodeUnavailable, message: "the server is busy; try again"}
	}
	if err == nil {
		err = s.dispatch(ctx, req)
	}
	if err != nil {
		s.fail(ctx, requestID(req), err)
	}
}

// reply queues the answer to a request, waiting for room until the
// request's deadline. A client that has not read its answers by then is
// closed as a slow consumer.
func (s *session) reply(ctx context.Context, m wire.Msg) {
	err := s.conn.SendWait(ctx, pulse.Message{Type: pulse.MessageText, Data: wire.MustEncode(m)})
	if errors.Is(err, context.DeadlineExceeded) {
		s.conn.Close(pulse.CloseSlowConsumer, "answers not read in time")
	}
}

func (s *session) fail(ctx context.Context, id uint64, err *protocolError) {
	s.reply(ctx, wire.Error{ID: id, Code: err.code, Message: err.message, RetryAfterMS: ceilMS(err.retryAfter)})
}

// stopWorker ends the worker once its current request is done or
// cancelled; the requests still queued are dropped, unanswered (the
// connection has closed: its client sends them again).
func (s *session) stopWorker() {
	s.mu.Lock()
	s.ended = true
	if s.cancel != nil {
		s.cancel()
	}
	if s.room != nil {
		close(s.room)
		s.room = nil
	}
	s.mu.Unlock()
	s.worker.Wait()
}

// ceilMS is d in whole milliseconds, rounded up: a client that waits
// that long is not early.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
