package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pulse-go/pulse/auth"
	"github.com/pulse-go/pulse/hub"
)

// authConfig is what the identity flags of "pulse serve" set: at most one
// way of verifying tokens, or none for an anonymous server.
type authConfig struct {
	secret  string // --jwt-secret: HS256
	keyFile string // --jwt-keys: PEM public keys by kid, or the URL of a JWKS
}

func (a *authConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.secret, "jwt-secret", os.Getenv("PULSE_JWT_SECRET"),
		"HS256 `secret` of the tokens clients must present, at least 32 bytes (default $PULSE_JWT_SECRET);\nwithout it or --jwt-keys, anyone may connect")
	fs.StringVar(&a.keyFile, "jwt-keys", "",
		"PEM `file` of the public keys (RS256, ES256, EdDSA) of the tokens clients must present, each named\nby a \"kid\" header, or the https:// URL of a JWKS, fetched at start and every 5 minutes;\nwithout it or --jwt-secret, anyone may connect")
}

// validate refuses both ways at once.
func (a *authConfig) validate() error {
	if a.secret != "" && a.keyFile != "" {
		return errors.New("--jwt-secret and --jwt-keys exclude each other")
	}
	return nil
}

// verifier builds the token verifier, or nil for an anonymous server; it
// logs which one the server runs with.
func (a *authConfig) verifier(ctx context.Context, logger *slog.Logger) (*auth.Verifier, error) {
	switch {
	case a.secret != "":
		logger.Info("tokens required", "verify", "HS256 secret")
		return auth.NewHMAC([]byte(a.secret), nil)
	case strings.HasPrefix(a.keyFile, "https://") || strings.HasPrefix(a.keyFile, "http://"):
		logger.Info("tokens required", "verify", "JWKS", "url", a.keyFile)
		return auth.NewJWKS(ctx, a.keyFile, nil)
	case a.keyFile != "":
		data, err := os.ReadFile(a.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--jwt-keys: %w", err)
		}
		logger.Info("tokens required", "verify", "public keys", "file", a.keyFile)
		return auth.NewKeys(data, nil)
	}
	logger.Warn("anonymous: no --jwt-secret or --jwt-keys, so any client may connect, subscribe and publish")
	return nil, nil
}

// hubVerifier is v as the hub's Options.Verifier: a nil interface for an
// anonymous server, never an interface holding a nil pointer.
func hubVerifier(v *auth.Verifier) hub.Verifier {
	if v == nil {
		return nil
	}
	return v
}

// refreshKeys runs v's JWKS refreshes until ctx ends, logging failures;
// it returns at once for other verifiers.
func refreshKeys(ctx context.Context, v *auth.Verifier, logger *slog.Logger) error {
	if v == nil {
		return nil
	}
	return v.Run(ctx, func(err error) { logger.Warn("JWKS refresh failed; the keys in force stay", "err", err) })
}
