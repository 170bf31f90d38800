package yamlnode

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestScalars(t *testing.T) {
	cases := []struct {
		src  string
		f    func(d *Decoder, n *yaml.Node) any
		want any
		err  string
	}{
		{"5", func(d *Decoder, n *yaml.Node) any { return d.Int(n, "x", 0, 10) }, 5, ""},
		{"0x10", func(d *Decoder, n *yaml.Node) any { return d.Int(n, "x", 0, 100) }, 16, ""},
		{"11", func(d *Decoder, n *yaml.Node) any { return d.Int(n, "x", 0, 10) }, 0, "out of range (expected 0 to 10)"},
		{"'5'", func(d *Decoder, n *yaml.Node) any { return d.Int(n, "x", 0, 10) }, 0, "expected an integer"},
		{"1.5", func(d *Decoder, n *yaml.Node) any { return d.Int(n, "x", 0, 10) }, 0, "expected an integer"},
		{"99.95%", func(d *Decoder, n *yaml.Node) any { return d.Float(n, "x", 0, 100) }, 99.95, ""},
		{".nan", func(d *Decoder, n *yaml.Node) any { return d.Float(n, "x", 0, 100) }, 0.0, "expected a number"},
		{"yes", func(d *Decoder, n *yaml.Node) any { return d.Bool(n, "x") }, true, ""},
		{"maybe", func(d *Decoder, n *yaml.Node) any { return d.Bool(n, "x") }, false, "expected true or false"},
		{"1h30m", func(d *Decoder, n *yaml.Node) any { return d.Duration(n, "x") }, 90 * time.Minute, ""},
		{"7d", func(d *Decoder, n *yaml.Node) any { return d.Duration(n, "x") }, 7 * 24 * time.Hour, ""},
		{"0", func(d *Decoder, n *yaml.Node) any { return d.Duration(n, "x") }, time.Duration(0), ""},
		{"-1s", func(d *Decoder, n *yaml.Node) any { return d.Duration(n, "x") }, time.Duration(0), "zero or more"},
		{"abc", func(d *Decoder, n *yaml.Node) any { return d.String(n, "x") }, "abc", ""},
		{"12", func(d *Decoder, n *yaml.Node) any { return d.String(n, "x") }, "", "quote it"},
		{"[a]", func(d *Decoder, n *yaml.Node) any { return d.String(n, "x") }, "", "expected a string, found a list"},
		{"b", func(d *Decoder, n *yaml.Node) any { return d.Enum(n, "x", "a", "c") }, "", "expected one of: a, c"},
		{"a", func(d *Decoder, n *yaml.Node) any { return strings.Join(d.Strings(n, "x"), ",") }, "a", ""},
		{"[a, b]", func(d *Decoder, n *yaml.Node) any { return strings.Join(d.Strings(n, "x"), ",") }, "a,b", ""},
	}
	for _, tc := range cases {
		d := NewDecoder("f.yaml")
		n := d.Parse([]byte(tc.src))
		got := tc.f(d, n)
		if got != tc.want {
			t.Errorf("%q: got %v (%T), want %v (%T)", tc.src, got, got, tc.want, tc.want)
		}
		err := d.Errs.Err()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.src, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.err)
		case err != nil && !strings.HasPrefix(err.Error(), "f.yaml:1:1: "):
			t.Errorf("%q: error lacks position: %v", tc.src, err)
		}
	}
}

func TestMapping(t *testing.T) {
	d := NewDecoder("m.yaml")
	n := d.Parse([]byte("a: 1\nb: 2\na: 3\nc: 4\n"))
	var a int
	d.Mapping(n, "thing", map[string]Field{
		"a": func(_, v *yaml.Node) { a = d.Int(v, "a", 0, 9) },
		"b": nil,
	})
	if a != 1 {
		t.Errorf("a = %d", a)
	}
	msg := d.Errs.Err().Error()
	for _, w := range []string{`m.yaml:3:1: thing: duplicate key "a"`, `m.yaml:4:1: thing: unknown key "c" (expected one of: a, b)`} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	d := NewDecoder("s.yaml")
	if n := d.Parse([]byte("a: 1\nb: [\n")); n != nil {
		t.Fatal("parsed malformed YAML")
	}
	if len(d.Errs) != 1 || d.Errs[0].Line == 0 || !strings.Contains(d.Errs[0].Msg, "invalid YAML") {
		t.Errorf("errs = %v", d.Errs)
	}
}

func TestSortDedup(t *testing.T) {
	l := ErrorList{{File: "f", Line: 3, Col: 1, Msg: "c"}, {File: "f", Line: 1, Col: 2, Msg: "a"}, {File: "f", Line: 3, Col: 1, Msg: "c"}}
	l.Sort()
	if len(l) != 2 || l[0].Line != 1 {
		t.Errorf("sorted = %v", l)
	}
}
