package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
)

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string // "" for success
		wantOut string
	}{
		{args: nil, wantErr: "no command given; known commands: serve"},
		{args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"; known commands: serve`},
		{args: []string{"help"}, wantOut: "serve    serve WebSocket"},
		{args: []string{"--help"}, wantOut: "Commands:"},
		{args: []string{"serve", "--help"}, wantOut: "-ping-interval duration"},
		{args: []string{"serve", "-h"}, wantOut: "(default 25s)"},
		{args: []string{"serve", "-h"}, wantOut: "debug, info (the default), warn or error; either case"},
		{args: []string{"connect", "-h"}, wantOut: "Usage: pulse connect [flags] URL"},
		{args: []string{"chaos", "-h"}, wantOut: "stdin (default: on when stdin is a terminal)\n"},
		{args: []string{"version"}, wantOut: "pulse devel " + runtime.Version()},
		{args: []string{"help"}, wantOut: "version  print the version"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), tc.args, &stdout, &stderr)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("run %q = %v, want error containing %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("run %q = %v", tc.args, err)
		case !strings.Contains(stdout.String(), tc.wantOut):
			t.Errorf("run %q printed %q, want it to contain %q", tc.args, stdout.String(), tc.wantOut)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		flags   []string
		wantErr string
	}{
		{[]string{"--heartbeat", "bogus"}, `invalid value "bogus" for flag -heartbeat`},
		{[]string{"--engine", "kqueue"}, `invalid value "kqueue" for flag -engine`},
		{[]string{"--log-level", "loud"}, `invalid value "loud" for flag -log-level`},
		{[]string{"--ping-interval", "soon"}, `invalid value "soon" for flag -ping-interval`},
		{[]string{"--ping-interval", "0s"}, "--ping-interval must be positive"},
		{[]string{"--pong-timeout", "-1s", "--queue-size", "0"}, "--pong-timeout, --queue-size must be positive"},
		{[]string{"--max-message-size", "-5"}, "--max-message-size must be positive"},
		{[]string{"--allow-origin", "example.com"}, `"example.com" is not an origin`},
		{[]string{"--allow-origin", "https://a.example/path"}, "is not an origin"},
		{[]string{"--nope"}, "flag provided but not defined: -nope (see pulse serve --help)"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.flags...)
		err := run(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("serve %q = %v, want error containing %q", tc.flags, err, tc.wantErr)
		}
	}
}

func TestFlagsMapToOptions(t *testing.T) {
	cfg, err := parseServeFlags([]string{
		"--ping-interval", "3s", "--pong-timeout", "2s", "--heartbeat", "text",
		"--write-timeout", "4s", "--queue-size", "7", "--max-message-size", "99",
		"--drain-window", "6s", "--engine", "std", "--max-ping-rate", "9", "--compression",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := pulse.Options{
		Interval: 3 * time.Second, Timeout: 2 * time.Second, Heartbeat: pulse.HeartbeatText,
		WriteTimeout: 4 * time.Second, QueueSize: 7, MaxMessageSize: 99, DrainWindow: 6 * time.Second,
		Engine: pulse.EngineStd, MaxPingRate: 9, Compression: &pulse.CompressionOptions{},
	}
	got := cfg.options(nil, nil)
	if got.CheckOrigin == nil {
		t.Error("options.CheckOrigin is nil, want the --allow-origin rule")
	}
	got.CheckOrigin = nil // funcs do not compare
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options = %+v, want %+v", got, want)
	}
}

func TestAllowOrigin(t *testing.T) {
	for _, tc := range []struct {
		flags  []string
		origin string
		want   bool
	}{
		{[]string{"https://app.example"}, "https://app.example", true},
		{[]string{"https://App.Example/"}, "https://app.example", true},
		{[]string{"https://a.example,https://b.example"}, "https://b.example", true},
		{[]string{"https://a.example", "https://b.example"}, "https://b.example", true},
		{[]string{"https://app.example"}, "http://app.example", false},
		{[]string{"https://app.example"}, "https://evil.example", false},
		{[]string{"https://app.example"}, "", true},                          // not a browser
		{[]string{"https://app.example"}, "http://pulse.example:8080", true}, // same origin
		{[]string{"*"}, "https://evil.example", true},
	} {
		var origins originsFlag
		for _, f := range tc.flags {
			if err := origins.Set(f); err != nil {
				t.Fatalf("Set(%q): %v", f, err)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "http://pulse.example:8080/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := origins.check()(r); got != tc.want {
			t.Errorf("allow %q, Origin %q: %v, want %v", tc.flags, tc.origin, got, tc.want)
		}
	}
}

// --log-level takes either case and shows lower case.
func TestLogLevelFlag(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "WARN": slog.LevelWarn, "Error": slog.LevelError, "info": slog.LevelInfo} {
		cfg, err := parseServeFlags([]string{"--log-level", in}, &bytes.Buffer{})
		if err != nil || cfg.logLevel != want {
			t.Errorf("--log-level %s: %v, %v; want %v", in, cfg, err, want)
		}
	}
	if got := (*levelFlag)(new(slog.LevelWarn)).String(); got != "warn" {
		t.Errorf("levelFlag shows %q, want warn", got)
	}
}

// The embedded default serves this machine only.
func TestDefaultAddrIsLoopback(t *testing.T) {
	cfg, err := parseServeFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != "127.0.0.1:8080" {
		t.Fatalf("default --addr %q, want 127.0.0.1:8080", cfg.addr)
	}
}
