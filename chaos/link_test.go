package chaos_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

func TestCutResets(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, l := connect(t, p, sink)

	if err := l.Cut(); err != nil {
		t.Fatalf("Cut: %v", err)
	}
	if err := readErr(t, client); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client after Cut: %v, want connection reset", err)
	}
	if err := readErr(t, server); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server after Cut: %v, want connection reset", err)
	}
	waitDone(t, l)
}

func TestCloseSendsEOF(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, l := connect(t, p, sink)

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := readErr(t, client); err != io.EOF {
		t.Fatalf("client after Close: %v, want EOF", err)
	}
	if err := readErr(t, server); err != io.EOF {
		t.Fatalf("server after Close: %v, want EOF", err)
	}
	waitDone(t, l)
}

// A half close passes through: each side reads EOF only after the other
// has finished writing, and the link ends when both have.
func TestHalfClose(t *testing.T) {
	addr, sink := startSink(t)
	p := startProxy(t, addr)
	client, server, l := connect(t, p, sink)

	send(t, client, "last words")
	client.CloseWrite()
	expect(t, server, "last words")
	if err := readErr(t, server); err != io.EOF {
		t.Fatalf("server after client half close: %v, want EOF", err)
	}

	send(t, server, "reply")
	server.CloseWrite()
	expect(t, client, "reply")
	if err := readErr(t, client); err != io.EOF {
		t.Fatalf("client after server half close: %v, want EOF", err)
	}
	waitDone(t, l)
}
