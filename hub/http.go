package hub

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// maxPublishBody bounds the body of a POST to the publish API.
const maxPublishBody = 1 << 20

// publishBody is what POST /api/publish takes.
type publishBody struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"key,omitempty"`
}

// PublishHandler returns the HTTP publish API: a POST with the header
// "Authorization: Bearer <apiKey>" and the JSON body
// {"channel":"news","data":{...},"key":"optional idempotency key"} publishes
// data and answers 200 with {"pos":{"epoch":"...","offset":7},"duplicate":false}.
// A wrong or missing key gets 401, a bad body 400, a body over 1 MiB 413,
// another method 405, a broker failure 503. An empty apiKey refuses every
// request with 403: the API is off.
func (h *Hub) PublishHandler(apiKey string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if apiKey == "" {
			httpError(w, http.StatusForbidden, "the publish API is off: no API key is set")
			return
		}
		if !keyMatches(r.Header.Get("Authorization"), apiKey) {
			httpError(w, http.StatusUnauthorized, "missing or wrong API key")
			return
		}
		h.servePublish(w, r)
	})
}

func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request) {
	var body publishBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
			return
		}
		httpError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return
	}
	if err := checkChannel(body.Channel); err != nil {
		httpError(w, http.StatusBadRequest, err.message)
		return
	}
	if len(body.Data) == 0 {
		httpError(w, http.StatusBadRequest, "missing data")
		return
	}
	res, err := h.Publish(r.Context(), body.Channel, body.Data, PublishOptions{IdempotencyKey: body.Key})
	if err != nil {
		h.opts.Logger.Warn("hub: broker failed", "op", "http publish", "err", err)
		httpError(w, http.StatusServiceUnavailable, "publish failed; try again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pos": res.Pos, "duplicate": res.Duplicate})
}

// keyMatches compares a bearer token with the key in constant time.
func keyMatches(header, key string) bool {
	token, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(key)) == 1
}

func httpError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
