// Package auth authenticates firebreak's HTTP callers with bearer tokens
// that carry a role (viewer, operator, admin).
//
// Tokens come from a file of lines
//
//	# token                                   role      name
//	sha256:9f86d081884c7d659a2feaa0c55ad015…  operator  alice
//	s3cr3t-plain-token                        viewer    grafana
//
// A token may be written in clear or as "sha256:" and the hex SHA-256 of
// the token (preferred: the file then holds no secret). Tokens are compared
// by their SHA-256 with crypto/subtle.ConstantTimeCompare against every
// entry, so the time taken does not depend on which entry matches or how
// much of a token is right.
//
// Browsers authenticate with the same token, kept in an HttpOnly,
// SameSite=Strict cookie set by a sign-in form; a mutating request
// authenticated by the cookie must also carry the header CSRFHeader.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// Role is what a caller may do. Higher roles include lower ones.
type Role int

// Roles.
const (
	None     Role = iota // not authenticated
	Viewer               // read everything but the audit log
	Operator             // drain, undrain, overrides
	Admin                // everything, including the audit log
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("role %q: expected viewer, operator or admin", s)
}

// Identity is an authenticated caller.
type Identity struct {
	// Name is the token's name (who, in the audit log); "anonymous" for an
	// unauthenticated caller.
	Name string
	Role Role
	// Cookie is true when the token came from the browser cookie.
	Cookie bool
}

// Sentinel errors of Identify.
var (
	ErrNoToken  = errors.New("no token")
	ErrBadToken = errors.New("unknown token")
)

// CookieName is the browser cookie that holds the token.
const CookieName = "firebreak_token"

// CSRFHeader must be present (any value) on mutating requests authenticated
// by the cookie; browsers do not let other sites set it.
const CSRFHeader = "X-Firebreak-Request"

type entry struct {
	hash [sha256.Size]byte
	role Role
	name string
}

// Tokens is an immutable set of tokens. The zero value and nil hold none.
type Tokens struct {
	entries []entry
}

// ParseTokens parses a tokens file's contents; file names it in errors
// (file:line: message).
func ParseTokens(file string, data []byte) (*Tokens, error) {
	t := &Tokens{}
	var errs []error
	names := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			errs = append(errs, fmt.Errorf("%s:%d: expected \"token role name\", got %d fields", file, line, len(f)))
			continue
		}
		role, err := ParseRole(f[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, line, err))
			continue
		}
		if prev, dup := names[f[2]]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: name %q already used on line %d", file, line, f[2], prev))
			continue
		}
		names[f[2]] = line
		e := entry{role: role, name: f[2]}
		if h, ok := strings.CutPrefix(f[0], "sha256:"); ok {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("%s:%d: sha256: expected 64 hex digits", file, line))
				continue
			}
			copy(e.hash[:], b)
		} else {
			if len(f[0]) < 16 {
				errs = append(errs, fmt.Errorf("%s:%d: token too short: expected at least 16 characters", file, line))
				continue
			}
			e.hash = sha256.Sum256([]byte(f[0]))
		}
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadTokens reads and parses a tokens file.
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	return ParseTokens(path, b)
}

// NewTokens builds a token set in memory (for tests and the demo).
func NewTokens(list ...Token) *Tokens {
	t := &Tokens{}
	for _, tk := range list {
		t.entries = append(t.entries, entry{hash: sha256.Sum256([]byte(tk.Secret)), role: tk.Role, name: tk.Name})
	}
	return t
}

// Token is one clear-text token for NewTokens.
type Token struct {
	Secret string
	Role   Role
	Name   string
}

// HashToken returns the "sha256:<hex>" form of a token for a tokens file.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Check returns the identity of secret. It compares against every entry in
// constant time per entry and does not stop at a match.
func (t *Tokens) Check(secret string) (Identity, bool) {
	if t == nil || secret == "" {
		return Identity{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, false
	}
	return Identity{Name: t.entries[found].name, Role: t.entries[found].role}, true
}

// Authenticator identifies HTTP callers. Do not copy it after first use.
type Authenticator struct {
	// Tokens are the known tokens from the tokens file (nil: none).
	Tokens *Tokens
	// Anonymous is the role of callers without a token (default None:
	// reads need a viewer token). Set Viewer to let anyone who can reach
	// the node read the dashboard and API; it is never above Viewer.
	Anonymous Role

	// stored are tokens kept in the store, replaced as they change.
	stored atomic.Pointer[Tokens]
}

// SetStored replaces the tokens that come from the store (see
// api.FollowTokens). It is safe to call while requests are served.
func (a *Authenticator) SetStored(t *Tokens) { a.stored.Store(t) }

// Check returns the identity of secret among the file's and the store's
// tokens (a file token wins when a name is in both).
func (a *Authenticator) Check(secret string) (Identity, bool) {
	if a == nil {
		return Identity{}, false
	}
	if id, ok := a.Tokens.Check(secret); ok {
		return id, true
	}
	return a.stored.Load().Check(secret)
}

// Identify returns the caller of r: from "Authorization: Bearer <token>",
// else from the cookie, else anonymous. A token that is present but
// unknown is an error (ErrBadToken) rather than anonymous.
func (a *Authenticator) Identify(r *http.Request) (Identity, error) {
	secret, cookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		s, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Identity{}, fmt.Errorf("authorization header: expected \"Bearer <token>\": %w", ErrBadToken)
		}
		secret = strings.TrimSpace(s)
	} else if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		secret, cookie = c.Value, true
	}
	if secret == "" {
		return a.anonymous(), nil
	}
	id, ok := a.Check(secret)
	if !ok {
		return Identity{}, ErrBadToken
	}
	id.Cookie = cookie
	return id, nil
}

func (a *Authenticator) anonymous() Identity {
	r := None
	if a != nil && a.Anonymous >= Viewer {
		r = Viewer
	}
	return Identity{Name: "anonymous", Role: r}
}

// SetCookie stores secret in the browser cookie (HttpOnly, SameSite=Strict;
// Secure when the request came over TLS).
func SetCookie(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 12 * 3600})
}

// ClearCookie removes the browser cookie.
func ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}
