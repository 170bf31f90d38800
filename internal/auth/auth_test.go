package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	good := "# comment\n\n" + HashToken("operator-secret-123") + " operator alice\nviewer-secret-4567 viewer grafana\n"
	toks, err := ParseTokens("tokens", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Fatalf("len %d", toks.Len())
	}
	for _, tc := range []struct {
		secret string
		name   string
		role   Role
		ok     bool
	}{
		{"operator-secret-123", "alice", Operator, true},
		{"viewer-secret-4567", "grafana", Viewer, true},
		{"viewer-secret-456", "", None, false},
		{"", "", None, false},
	} {
		id, ok := toks.Check(tc.secret)
		if ok != tc.ok || id.Name != tc.name || id.Role != tc.role {
			t.Errorf("Check(%q) = %+v %v, want %s %s %v", tc.secret, id, ok, tc.name, tc.role, tc.ok)
		}
	}

	bad := []struct{ in, want string }{
		{"only-two fields", "tokens:1: expected \"token role name\""},
		{"abcdefghijklmnopq root bob", "tokens:1: role \"root\""},
		{"short viewer bob", "tokens:1: token too short"},
		{"sha256:zz viewer bob", "tokens:1: sha256: expected 64 hex digits"},
		{"abcdefghijklmnopq viewer bob\nabcdefghijklmnopqr viewer bob", "tokens:2: name \"bob\" already used on line 1"},
	}
	for _, tc := range bad {
		_, err := ParseTokens("tokens", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestIdentify(t *testing.T) {
	a := &Authenticator{Tokens: NewTokens(Token{Secret: "operator-secret-123", Role: Operator, Name: "alice"})}
	req := func(h, cookie string) Identity {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if cookie != "" {
			r.Header.Set("Cookie", CookieName+"="+cookie)
		}
		id, err := a.Identify(r)
		if err != nil {
			return Identity{Name: "error"}
		}
		return id
	}
	if id := req("Bearer operator-secret-123", ""); id.Role != Operator || id.Cookie {
		t.Errorf("bearer: %+v", id)
	}
	if id := req("", "operator-secret-123"); id.Role != Operator || !id.Cookie {
		t.Errorf("cookie: %+v", id)
	}
	if id := req("Basic xyz", ""); id.Name != "error" {
		t.Errorf("basic: %+v", id)
	}
	if id := req("Bearer nope-nope-nope-nope", ""); id.Name != "error" {
		t.Errorf("unknown token: %+v", id)
	}
	if id := req("", ""); id.Role != None || id.Name != "anonymous" {
		t.Errorf("anonymous: %+v", id)
	}
	a.Anonymous = Admin // capped at viewer
	if id := req("", ""); id.Role != Viewer {
		t.Errorf("anonymous viewer: %+v", id)
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("abcdefghijklmnopq viewer bob\n# x\n"))
	f.Add([]byte(HashToken("x") + " admin root"))
	f.Add([]byte("\x00\n\n a b c d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := ParseTokens("f", b)
		if err == nil && toks == nil {
			t.Fatal("nil tokens without error")
		}
	})
}
