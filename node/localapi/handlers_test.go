package localapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// lapiMux is the real route table over h (groups a test leaves nil are
// never called).
func lapiMux(h *handlers) *http.ServeMux {
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mux := http.NewServeMux()
	h.socketRoutes(mux)
	return mux
}

// lapiDo sends one request to mux and returns the status and body.
func lapiDo(t *testing.T, mux http.Handler, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, rd))
	return rec.Code, rec.Body.Bytes()
}

// lapiWant checks a status code and, for a failure, that the body is
// {"error": ...} containing wantErr.
func lapiWant(t *testing.T, what string, code int, body []byte, wantCode int, wantErr string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: status %d, want %d (body %s)", what, code, wantCode, body)
	}
	if wantErr == "" {
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, wantErr) {
		t.Fatalf("%s: body %s, want {\"error\": ...%q...}", what, body, wantErr)
	}
}

func lapiDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}
