package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/meshwork/meshwork/node"
)

// client calls the daemon's control API.
type client struct {
	home string
	http *http.Client
}

func newClient(home string) *client {
	sock := node.SocketPath(home)
	return &client{home: home, http: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

// hintError carries a next step for the user.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// stream sends a request whose answer is NDJSON and calls fn per line. It
// has no overall timeout: a transfer takes as long as it takes.
func (c *client) stream(method, path string, body any, fn func(line []byte) error) error {
	return c.streamUntil(method, path, body, nil, fn)
}

// streamUntil is stream that also ends (without error) when stop closes.
func (c *client) streamUntil(method, path string, body any, stop <-chan struct{}, fn func(line []byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://meshd"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return c.transportErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiErr(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // stopped on purpose
	}
	return sc.Err()
}

func (c *client) transportErr(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return &hintError{
			err:  fmt.Errorf("no meshd is running with home %q", c.home),
			hint: fmt.Sprintf("start the daemon first: meshd --home %s", c.home),
		}
	}
	return fmt.Errorf("talk to meshd: %w", err)
}

func apiErr(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("meshd answered %s", resp.Status)
}

// callNoTimeout is call for requests that take as long as they take.
func (c *client) callNoTimeout(method, path string, body any, out any) error {
	hc := *c.http
	hc.Timeout = 0
	cc := &client{home: c.home, http: &hc}
	return cc.call(method, path, body, out, nil)
}

// getJSON GETs path into out. With asJSON it prints the API's JSON
// unchanged to w and reports done, so the caller prints no table.
func (c *client) getJSON(path string, out any, asJSON bool, w io.Writer) (done bool, err error) {
	var raw []byte
	if err := c.call("GET", path, nil, out, &raw); err != nil {
		return true, err
	}
	if asJSON {
		_, err := w.Write(raw)
		return true, err
	}
	return false, nil
}

// call sends a request with an optional JSON body and decodes the answer
// into out (if not nil); raw, if not nil, receives the body unchanged.
func (c *client) call(method, path string, body any, out any, raw *[]byte) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://meshd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiErr(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read meshd answer: %w", err)
	}
	if raw != nil {
		*raw = b
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode meshd answer: %w", err)
		}
	}
	return nil
}
