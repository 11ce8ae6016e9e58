package node

import "errors"

// Kinds of failure the exported methods called by the local API
// (node/localapi) report, so the API can choose a status code without
// knowing the core: test with errors.Is. The error's text is the wrapped
// error's alone (the kind adds no words), so the API's {"error": ...}
// answers read as they always have.
var (
	// ErrNoMesh: the device is in no mesh yet (the API answers 409).
	ErrNoMesh = errNoMesh
	// ErrNotFound: a named device, folder, object, file or tunnel does not
	// exist here (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a request's argument is malformed (400).
	ErrInvalid = errors.New("invalid argument")
	// ErrForbidden: this device's role does not allow it (403).
	ErrForbidden = errors.New("not allowed")
	// ErrConflict: the request is valid but the state does not allow it now (409).
	ErrConflict = errors.New("conflict")
	// ErrUnreachable: a device or service could not be reached (502).
	ErrUnreachable = errors.New("unreachable")
	// ErrTooLarge: the request's content exceeds a limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrReadOnly: the object cannot be written this way (405).
	ErrReadOnly = errors.New("read-only")
)

// kindError marks err with a kind (one of the Err variables above).
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// withKind marks err as a failure of the given kind; nil stays nil.
func withKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}
