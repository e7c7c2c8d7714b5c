package pulse

import "net/http"

// heartbeatHeaders holds the Pulse-Heartbeat header of each heartbeat
// kind, indexed by the kind, made once per Handler rather than per
// upgrade: the server's Interval and Timeout never change.
type heartbeatHeaders [len(heartbeatNames)]string

func (s *Server) heartbeatHeaders() *heartbeatHeaders {
	var h heartbeatHeaders
	for kind := HeartbeatFrame; kind.valid(); kind++ {
		h[kind] = heartbeatHeader(kind, s.opts.Interval, s.opts.Timeout)
	}
	return &h
}

// upgradeHeader returns the response header of an upgrade with a
// heartbeat of kind. It is made on the heap, not in the handler's frame,
// which is live through the whole upgrade: with the map in it, a request's
// goroutine outgrew its first stack deep inside the upgrade, and copying
// the stack cost some 5% of an upgrade's CPU time.
//
//go:noinline
func (h *heartbeatHeaders) upgradeHeader(kind HeartbeatKind) http.Header {
	return http.Header{"Pulse-Heartbeat": {h[kind]}}
}
