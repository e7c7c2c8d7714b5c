package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

func TestHandlerServesClientAndDemos(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, typ, contains string
	}{
		{"/pulse.js", "text/javascript", "export class PulseSocket extends EventTarget"},
		{"/", "text/html", `href="/chat/"`},
		{"/chat/", "text/html", `src="chat.js"`},
		{"/dashboard/", "text/html", `src="dashboard.js"`},
		{"/game/", "text/html", `src="game.js"`},
		{"/style.css", "text/css", ":root"},
	} {
		res, body := get(t, h, tc.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", tc.path, res.Status)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.typ) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.typ)
		}
		if res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, res.Header.Get("Cache-Control"))
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}
	if res, _ := get(t, h, "/nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: %s, want 404", res.Status)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q; want 405, GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

// The demos run with no network: nothing may load from another origin.
var externalRef = regexp.MustCompile(`(?:src|href)=["']?(?:https?:)?//|from ['"]https?:|@import url\(["']?https?:`)

func TestEmbeddedFilesLoadNothingExternal(t *testing.T) {
	n := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if loc := externalRef.FindIndex(data); loc != nil {
			t.Errorf("%s loads from another origin: %q", path, data[loc[0]:min(len(data), loc[1]+40)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("walked %d embedded files, want the client, the index and three demos", n)
	}
}
