package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
)

// Transport is one connection as the client uses it: text messages in and
// out. Run reads from one goroutine and writes from another, never two
// writes at once. Tests substitute an in-memory Transport through
// Options.Dial.
type Transport interface {
	// ReadMessage returns the next message. When the peer closed with a
	// close frame the error is a *pulse.CloseError.
	ReadMessage() ([]byte, error)
	// WriteMessage sends one text message, within the transport's own
	// write deadline.
	WriteMessage(data []byte) error
	// Close sends a close frame with code and reason, best effort, and
	// closes the connection. It makes a blocked ReadMessage return.
	Close(code pulse.CloseCode, reason string) error
}

// HandshakeError is a dial the server answered with an HTTP status other
// than 101. Run treats 4xx (except 408 and 429) as terminal, and waits
// RetryAfter before the next dial when the server sent one.
type HandshakeError struct {
	Status int
	// RetryAfter is the answer's Retry-After in seconds (the server's
	// admission control sets it on a 503), at most MaxRetryWindow; zero
	// if none.
	RetryAfter time.Duration
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("client: handshake refused: HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// ErrNotPulse is returned by DialWebSocket when the server did not accept
// the subprotocol pulse.v1.
var ErrNotPulse = errors.New("client: the server does not speak " + pulse.Subprotocol)

// writeTimeout bounds each write of the WebSocket transport.
const writeTimeout = 10 * time.Second

// DialWebSocket opens a WebSocket to url offering the subprotocol pulse.v1,
// within timeout. The resulting Transport answers ping frames itself.
func DialWebSocket(ctx context.Context, url string, timeout time.Duration) (Transport, error) {
	return DialWebSocketTLS(ctx, url, timeout, nil)
}

// DialWebSocketTLS is DialWebSocket with the TLS configuration of a wss://
// URL, such as one trusting a private CA (see LoadCA). Nil means the
// system's roots.
func DialWebSocketTLS(ctx context.Context, url string, timeout time.Duration, config *tls.Config) (Transport, error) {
	return dialWebSocket(ctx, url, timeout, config, nil)
}

// dialWebSocket is DialWebSocketTLS from the local address local (nil: the
// system's choice).
func dialWebSocket(ctx context.Context, url string, timeout time.Duration, config *tls.Config, local *net.TCPAddr) (Transport, error) {
	d := websocket.Dialer{Subprotocols: []string{pulse.Subprotocol}, HandshakeTimeout: timeout, TLSClientConfig: config}
	if local != nil {
		nd := &net.Dialer{LocalAddr: local}
		d.NetDialContext = nd.DialContext
	}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, &HandshakeError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if ws.Subprotocol() != pulse.Subprotocol {
		ws.Close()
		return nil, ErrNotPulse
	}
	return &wsTransport{ws: ws}, nil
}

// LoadCA returns a TLS configuration that trusts the certificates of the
// PEM file (a private CA, or a server's self-signed certificate) instead
// of the system's roots.
func LoadCA(file string) (*tls.Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// parseRetryAfter reads a Retry-After of whole seconds (an HTTP date is
// not used by pulse servers, and reads as none), at most MaxRetryWindow.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0
	}
	return min(time.Duration(n)*time.Second, MaxRetryWindow)
}

type wsTransport struct{ ws *websocket.Conn }

func (t *wsTransport) ReadMessage() ([]byte, error) {
	_, data, err := t.ws.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return nil, &pulse.CloseError{Code: pulse.CloseCode(ce.Code), Reason: ce.Text, Retry: pulse.ParseRetry(ce.Text)}
	}
	return data, err
}

func (t *wsTransport) WriteMessage(data []byte) error {
	t.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return t.ws.WriteMessage(websocket.TextMessage, data)
}

func (t *wsTransport) Close(code pulse.CloseCode, reason string) error {
	msg := websocket.FormatCloseMessage(int(code), reason)
	t.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	return t.ws.Close()
}
