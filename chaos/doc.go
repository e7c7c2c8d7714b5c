// Package chaos is a TCP fault proxy: it forwards connections from a
// listen address to a target address and, on command, breaks them the way
// networks break.
//
// Use Listen to start a Proxy in front of a server, and dial Proxy.Addr
// instead of the server. Each accepted connection becomes a Link. Find one
// with Proxy.Link (by the client's local address) or Proxy.Links, and wait
// for links to exist with Proxy.WaitLinks.
//
// Faults:
//   - Blackhole is a silent partition in one direction or both: the proxy
//     stops reading, so backpressure builds in the sender, and writes
//     nothing, without closing either socket. Heal forwards what was held,
//     in order.
//   - Delay holds each forwarded chunk for a fixed time.
//   - Limit caps the bandwidth of one direction or both.
//   - Link.Cut resets both sockets; Link.Close closes them in order.
//
// Faults set on the Proxy apply to every current link and to links
// accepted later; faults set on a Link apply to it alone.
//
// Concurrency: every method may be called from any goroutine. Proxy.Close
// returns after every goroutine of the proxy has exited.
//
// This is the fault proxy pulse's own tests use, and the engine of the
// pulse chaos command.
package chaos
