package main

import (
	"strings"
	"testing"
)

// TestBrokerURL: --broker takes redis:// and rediss:// URLs, one or
// several, and errors never show a password.
func TestBrokerURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"redis://127.0.0.1:6379/0", true},
		{"rediss://:secret@redis.example:6380/1", true},
		{"redis://a:6379,redis://b:6379", true},
		{"http://127.0.0.1:6379", false},
		{"redis://", false},
		{"redis://a:6379,127.0.0.1:6379", false},
		{"redis://:secret@a:6379,ftp://:secret@b", false},
	} {
		err := checkBrokerURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("checkBrokerURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("checkBrokerURL(%q) = %v: the password shows", tc.url, err)
		}
	}
	if got := redactURL("redis://:secret@a:6379/0,redis://b"); got != "redis://:xxxxx@a:6379/0,redis://b" {
		t.Errorf("redactURL = %q", got)
	}
}
