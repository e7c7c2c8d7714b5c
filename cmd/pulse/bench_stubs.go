package main

import (
	"context"
	"errors"
)

func runStorm(ctx context.Context, b *bench) (*benchResult, error) {
	return nil, errors.New("not implemented yet")
}
func runBaseline(ctx context.Context, b *bench) (*benchResult, error) {
	return nil, errors.New("not implemented yet")
}
