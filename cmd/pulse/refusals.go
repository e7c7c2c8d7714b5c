package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pulse-go/pulse/internal/lograte"
)

// Requests "pulse serve" refuses before the library sees them: a browser
// Origin that --allow-origin does not admit (403, naming the flag), and a
// wrong key on the publish API (401; 403 while the API is off). Each is
// logged with its reason and remote address (at warn; the API being off
// at info), rate-limited like the library's own refusals of bad
// handshakes.

// Bounds of the refusal log.
const (
	refusalWindow = 10 * time.Second
	refusalBurst  = 10 // lines per window; the first line of a later window counts those left out
)

// refusalLog logs refused requests, at most refusalBurst lines per
// refusalWindow (see newRefusalLog).
type refusalLog struct {
	// Set at creation, never change.
	log   *slog.Logger
	limit *lograte.Limiter // safe for concurrent use
}

func newRefusalLog(log *slog.Logger) refusalLog {
	return refusalLog{log: log, limit: lograte.New(refusalWindow, refusalBurst)}
}

// refused logs one refusal of r at level, if the bound allows.
func (l refusalLog) refused(r *http.Request, level slog.Level, status int, reason string) {
	if ok, skipped := l.limit.Allow(time.Now()); ok {
		l.log.Log(r.Context(), level, "request refused", "status", status, "reason", reason,
			"remote", r.RemoteAddr, "path", r.URL.Path, "not_logged_before", skipped)
	}
}

// originGate answers a browser whose Origin check refuses with 403 and
// a body that names --allow-origin, before h upgrades it.
func (d *daemon) originGate(check func(*http.Request) bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check(r) {
			h.ServeHTTP(w, r)
			return
		}
		origin := r.Header.Get("Origin")
		d.refusals.refused(r, slog.LevelWarn, http.StatusForbidden, "origin "+origin+" not allowed")
		http.Error(w, fmt.Sprintf("origin %s may not connect: this server admits its own origin and those given with --allow-origin (such as --allow-origin %s)", origin, origin), http.StatusForbidden)
	})
}

// logAPIRefusals logs the requests the publish API refuses for their key.
func (d *daemon) logAPIRefusals(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		switch sw.status {
		case http.StatusUnauthorized:
			d.refusals.refused(r, slog.LevelWarn, sw.status, "missing or wrong API key")
		case http.StatusForbidden:
			d.refusals.refused(r, slog.LevelInfo, sw.status, "the publish API is off: no --api-key")
		}
	})
}

// statusWriter records the status of a plain HTTP answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// sameHost reports whether the host of a browser origin names the host a
// request came to: the same name, or two spellings of loopback
// (localhost, 127.0.0.1, [::1]) with the same port on a request that
// arrived on a loopback address.
func sameHost(originHost string, r *http.Request) bool {
	if strings.EqualFold(originHost, r.Host) {
		return true
	}
	oh, op := splitHost(originHost)
	rh, rp := splitHost(r.Host)
	return op == rp && isLoopback(oh) && isLoopback(rh) && arrivedOnLoopback(r)
}

func splitHost(hostport string) (host, port string) {
	u := url.URL{Host: hostport}
	return strings.ToLower(u.Hostname()), u.Port()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// arrivedOnLoopback reports whether r came to a loopback address.
func arrivedOnLoopback(r *http.Request) bool {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
