package main

import (
	"context"
	"errors"
	"io"
)

func runStorm(ctx context.Context, b *bench) (*benchResult, error)  { return nil, errors.New("not implemented yet") }
func runBaseline(ctx context.Context, b *bench) (*benchResult, error) {
	return nil, errors.New("not implemented yet")
}
func writeHTML(w io.Writer, r *benchResult) error { return errors.New("not implemented yet") }
