package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
)

// tlsConfig is what the TLS flags of "pulse serve" set: with both, the
// server speaks https:// and wss:// only.
type tlsConfig struct {
	certFile string
	keyFile  string
}

func (c *tlsConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.certFile, "tls-cert", "",
		"PEM `file` of the server's certificate (its chain after it); with --tls-key, serve https:// and wss://")
	fs.StringVar(&c.keyFile, "tls-key", "", "PEM `file` of the private key of --tls-cert")
}

func (c *tlsConfig) validate() error {
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

func (c *tlsConfig) enabled() bool { return c.certFile != "" }

// listener wraps ln in TLS with the certificate, loaded now so that a bad
// file fails the start rather than the first handshake.
func (c *tlsConfig) listener(ln net.Listener) (net.Listener, error) {
	if !c.enabled() {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	// HTTP/1.1 only: a WebSocket upgrade needs it, and net/http would
	// otherwise offer h2 on a TLS listener it did not make itself.
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}), nil
}

// schemes are the URL schemes the server answers on.
func (c *tlsConfig) schemes() (web, ws string) {
	if c.enabled() {
		return "https", "wss"
	}
	return "http", "ws"
}
