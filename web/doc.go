// Package web is pulse's browser side: pulse.js, the JavaScript client of
// the pulse.v1 protocol, and three demo apps (chat, a live dashboard and a
// multiplayer game), all embedded in the binary.
//
// Use Handler to serve them: /pulse.js, / (an index linking the demos),
// /chat/, /dashboard/ and /game/. The pages connect to /ws on the same
// origin, which must serve a hub.Hub.
//
// Use Run to drive the demos' server side on that hub: it publishes the
// dashboard's simulated series to DashboardChannel every DashboardPeriod, and
// runs the game's server-authoritative tick: players publish their inputs
// to GameInputChannel, whose presence says who plays, and every GameTick
// the state of the arena is published to GameStateChannel. A player whose
// presence leave arrives (a closed connection, or one found dead by the
// heartbeat) leaves the arena at the next tick.
//
// Concurrency: Handler may be shared by any number of requests; Run
// returns only after the goroutines it started have ended.
//
// See PROTOCOL.md for the wire protocol pulse.js speaks.
package web
