package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// HTTP calls a URL and checks the answer. Its one operation, "request",
// takes:
//
//	url     the URL, after ${...} expansion (required)
//	method  the method (default GET)
//	body    a request body (default none)
//	status  the expected status code (default 200)
//	expect  a substring the response body must contain (default none)
type HTTP struct {
	// Client makes the requests (default http.DefaultClient). Timeouts
	// come from the context.
	Client *http.Client
}

// Ops lists HTTP's operations.
func (*HTTP) Ops() []string { return []string{"request"} }

// Do makes the request.
func (h *HTTP) Do(ctx context.Context, t Target, op string, p Params) error {
	if op != "request" {
		return unknownOp("http", op, h.Ops())
	}
	url := Expand(p["url"], t)
	if url == "" {
		return Permanent(errors.New("http: parameter url is empty"))
	}
	method := p["method"]
	if method == "" {
		method = http.MethodGet
	}
	want := http.StatusOK
	if s := p["status"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			return Permanent(fmt.Errorf("http: parameter status: expected a status code, found %q", s))
		}
		want = n
	}
	var body io.Reader
	if b := p["body"]; b != "" {
		body = strings.NewReader(Expand(b, t))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return Permanent(fmt.Errorf("http: %w", err))
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("http %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("http %s %s: status %d, expected %d", method, url, resp.StatusCode, want)
	}
	if e := p["expect"]; e != "" && !strings.Contains(string(data), e) {
		return fmt.Errorf("http %s %s: body does not contain %q", method, url, e)
	}
	return nil
}

var _ Driver = (*HTTP)(nil)
