package main

import (
	"context"
	"errors"
)

func runBaseline(ctx context.Context, b *bench) (*benchResult, error) {
	return nil, errors.New("not implemented yet")
}
