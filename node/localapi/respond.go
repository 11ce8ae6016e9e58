package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshwork/meshwork/node"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// readJSON decodes the request's JSON body (at most 1 MiB) into v, or
// answers 400 and reports false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

// statusOf is the status code for a failure of the core: by its kind
// (node.ErrNotFound and the others), else def. The kinds a core method
// marks come before node.ErrNoMesh, which a method may wrap in one (an
// object lookup answers 404 in a device with no mesh).
func statusOf(err error, def int) int {
	for _, k := range []struct {
		kind error
		code int
	}{
		{node.ErrNotFound, http.StatusNotFound},
		{node.ErrInvalid, http.StatusBadRequest},
		{node.ErrForbidden, http.StatusForbidden},
		{node.ErrConflict, http.StatusConflict},
		{node.ErrUnreachable, http.StatusBadGateway},
		{node.ErrTooLarge, http.StatusRequestEntityTooLarge},
		{node.ErrReadOnly, http.StatusMethodNotAllowed},
		{node.ErrNoMesh, http.StatusConflict},
	} {
		if errors.Is(err, k.kind) {
			return k.code
		}
	}
	return def
}

// fail answers a failure of the core with the status of its kind, else
// 500.
func fail(w http.ResponseWriter, err error) {
	writeErr(w, statusOf(err, http.StatusInternalServerError), err)
}

func strp(s string) *string { return &s }

// answer returns the answer to a call of the core returning (v, err):
// v as JSON with 200, or the failure (fail). Use it as
// answer(w)(a.c.Method(...)).
func answer(w http.ResponseWriter) func(v any, err error) {
	return func(v any, err error) {
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}
