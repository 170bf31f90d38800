// Package yamlnode decodes YAML documents node by node so that every error
// names the file, line and column and says what was expected, and so that all
// errors in a document are reported, not only the first.
//
// It is shared by every firebreak file format (topology, runbooks). A Decoder
// collects errors; its helpers return zero values after recording an error so
// that decoding continues past a bad field.
package yamlnode

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem found in a file, at a position.
type Error struct {
	File string
	Line int // 1-based; 0 when unknown
	Col  int // 1-based; 0 when unknown
	Msg  string
}

// Error formats the error as file:line:col: message.
func (e Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrorList is every error found in one file, sorted by position.
type ErrorList []Error

// Error joins all errors, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Sort orders the list by line, then column, then message, and drops exact
// duplicates.
func (l *ErrorList) Sort() {
	s := *l
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Line != s[j].Line {
			return s[i].Line < s[j].Line
		}
		if s[i].Col != s[j].Col {
			return s[i].Col < s[j].Col
		}
		return s[i].Msg < s[j].Msg
	})
	out := s[:0]
	for i, e := range s {
		if i > 0 && e == s[i-1] {
			continue
		}
		out = append(out, e)
	}
	*l = out
}

// Err returns nil for an empty list and the sorted list otherwise.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// AsList extracts an ErrorList from err, if it is one.
func AsList(err error) (ErrorList, bool) {
	var l ErrorList
	ok := errors.As(err, &l)
	return l, ok
}

// maxVisits bounds the work done on one document, so that alias bombs
// ("billion laughs") cannot make decoding explode.
const maxVisits = 1 << 20

// Decoder walks yaml.Node trees and records errors.
type Decoder struct {
	File   string
	Errs   ErrorList
	visits int
}

// NewDecoder returns a decoder whose errors name file.
func NewDecoder(file string) *Decoder { return &Decoder{File: file} }

// Parse parses data into a document root (the node below the document node).
// It returns nil, with an error recorded, when the YAML itself is malformed
// or the document is empty.
func (d *Decoder) Parse(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.Errs = append(d.Errs, syntaxError(d.File, err))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		d.Errs = append(d.Errs, Error{File: d.File, Line: 1, Col: 1, Msg: "empty document: expected a mapping"})
		return nil
	}
	return doc.Content[0]
}

// syntaxError turns a yaml library error ("yaml: line 3: ...") into an Error
// with a position.
func syntaxError(file string, err error) Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	col := 0
	if line > 0 {
		col = 1
	}
	return Error{File: file, Line: line, Col: col, Msg: "invalid YAML: " + msg}
}

// Errorf records an error at node n (or at the top of the file when n is nil).
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	e := Error{File: d.File, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.Errs = append(d.Errs, e)
}

// Resolve follows aliases and reports whether the node may be visited
// (false once the visit budget is spent).
func (d *Decoder) Resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (d *Decoder) visit(n *yaml.Node) bool {
	d.visits++
	if d.visits == maxVisits {
		d.Errorf(n, "document too large or too many aliases (more than %d nodes)", maxVisits)
	}
	return d.visits < maxVisits
}

// Field is a handler for one key of a mapping. Key is the key node (for
// positions), Val the value node.
type Field func(key, val *yaml.Node)

// Mapping decodes a mapping node, calling the handler registered for each key.
// Unknown keys, duplicate keys and non-mapping nodes are errors. what names
// the thing being decoded, for messages ("service", "endpoint").
func (d *Decoder) Mapping(n *yaml.Node, what string, fields map[string]Field) bool {
	n = d.Resolve(n)
	if n == nil || !d.visit(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return true
		}
		d.Errorf(n, "%s: expected a mapping, found %s", what, describe(n))
		return false
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.Resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.Errorf(n.Content[i], "%s: expected a string key, found %s", what, describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.Errorf(k, "%s: merge keys (<<) are not supported; repeat the fields", what)
			continue
		}
		if seen[k.Value] {
			d.Errorf(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		h, ok := fields[k.Value]
		if !ok {
			d.Errorf(k, "%s: unknown key %q (expected one of: %s)", what, k.Value, keyList(fields))
			continue
		}
		if h != nil {
			h(k, v)
		}
	}
	return true
}

// Entries decodes a mapping whose keys are names (sites: {pangyo: ...}),
// calling fn for each entry in document order. Duplicate names are errors.
func (d *Decoder) Entries(n *yaml.Node, what string, fn func(name string, key, val *yaml.Node)) {
	n = d.Resolve(n)
	if n == nil || !d.visit(n) || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s: expected a mapping of name to %s, found %s", what, what, describe(n))
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.Resolve(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode || k.Value == "" {
			d.Errorf(n.Content[i], "%s: expected a non-empty name, found %s", what, describe(k))
			continue
		}
		if seen[k.Value] {
			d.Errorf(k, "duplicate %s name %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, n.Content[i+1])
	}
}

// Seq decodes a sequence node, calling fn for each item.
func (d *Decoder) Seq(n *yaml.Node, what string, fn func(i int, item *yaml.Node)) {
	n = d.Resolve(n)
	if n == nil || !d.visit(n) || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "%s: expected a list, found %s", what, describe(n))
		return
	}
	for i, it := range n.Content {
		fn(i, it)
	}
}

// scalar returns the resolved scalar node or records an error.
func (d *Decoder) scalar(n *yaml.Node, what, expected string) (*yaml.Node, bool) {
	n = d.Resolve(n)
	if n == nil || !d.visit(n) {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, "%s: expected %s, found %s", what, expected, describe(n))
		return nil, false
	}
	return n, true
}

// String decodes a string scalar. Numbers and booleans are refused so that a
// typo such as `site: 1` is caught.
func (d *Decoder) String(n *yaml.Node, what string) string {
	s, ok := d.scalar(n, what, "a string")
	if !ok {
		return ""
	}
	switch s.Tag {
	case "!!str", "!!binary", "":
		return s.Value
	case "!!null":
		d.Errorf(s, "%s: expected a string, found nothing", what)
		return ""
	default:
		// Accept plain scalars that merely look like numbers only when quoted.
		d.Errorf(s, "%s: expected a string, found %s %q (quote it if it is meant as text)", what, tagName(s.Tag), s.Value)
		return ""
	}
}

// Text decodes a scalar as text whatever its type (for addresses, versions).
func (d *Decoder) Text(n *yaml.Node, what string) string {
	s, ok := d.scalar(n, what, "a value")
	if !ok {
		return ""
	}
	return s.Value
}

// Int decodes an integer in [min, max].
func (d *Decoder) Int(n *yaml.Node, what string, min, max int) int {
	s, ok := d.scalar(n, what, "an integer")
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(s.Value, 0, 64)
	if err != nil || (s.Tag != "!!int" && s.Tag != "") {
		d.Errorf(s, "%s: expected an integer, found %q", what, s.Value)
		return 0
	}
	if v < int64(min) || v > int64(max) {
		d.Errorf(s, "%s: %d is out of range (expected %d to %d)", what, v, min, max)
		return 0
	}
	return int(v)
}

// Float decodes a number in [min, max]. A trailing % is accepted and ignored
// (so `target: 99.9%` reads as 99.9).
func (d *Decoder) Float(n *yaml.Node, what string, min, max float64) float64 {
	s, ok := d.scalar(n, what, "a number")
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s.Value), "%"), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(s, "%s: expected a number, found %q", what, s.Value)
		return 0
	}
	if v < min || v > max {
		d.Errorf(s, "%s: %g is out of range (expected %g to %g)", what, v, min, max)
		return 0
	}
	return v
}

// Bool decodes true/false.
func (d *Decoder) Bool(n *yaml.Node, what string) bool {
	s, ok := d.scalar(n, what, "true or false")
	if !ok {
		return false
	}
	switch strings.ToLower(s.Value) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	d.Errorf(s, "%s: expected true or false, found %q", what, s.Value)
	return false
}

// Duration decodes a Go duration ("500ms", "5m", "1h30m"); "0" is allowed and
// a "d" suffix means days ("7d"). Negative durations are refused.
func (d *Decoder) Duration(n *yaml.Node, what string) time.Duration {
	s, ok := d.scalar(n, what, "a duration such as 500ms, 30s, 5m, 1h")
	if !ok {
		return 0
	}
	v, err := ParseDuration(s.Value)
	if err != nil {
		d.Errorf(s, "%s: %v", what, err)
		return 0
	}
	return v
}

// ParseDuration parses a non-negative duration as Duration does.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if strings.HasSuffix(s, "d") {
		days, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err == nil && days >= 0 && days < 100000 {
			return time.Duration(days * float64(24*time.Hour)), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("expected a duration such as 500ms, 30s, 5m, 1h or 7d, found %q", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("expected a duration of zero or more, found %q", s)
	}
	return v, nil
}

// Enum decodes a string that must be one of allowed.
func (d *Decoder) Enum(n *yaml.Node, what string, allowed ...string) string {
	s := d.String(n, what)
	if s == "" {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.Errorf(d.Resolve(n), "%s: unknown value %q (expected one of: %s)", what, s, strings.Join(allowed, ", "))
	return ""
}

// Strings decodes a list of strings; a single string is accepted as a list of
// one.
func (d *Decoder) Strings(n *yaml.Node, what string) []string {
	r := d.Resolve(n)
	if r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
		return []string{d.String(r, what)}
	}
	var out []string
	d.Seq(n, what, func(_ int, it *yaml.Node) {
		out = append(out, d.String(it, what))
	})
	return out
}

// StringMap decodes a mapping of string to string (labels).
func (d *Decoder) StringMap(n *yaml.Node, what string) map[string]string {
	out := map[string]string{}
	d.Entries(n, what, func(name string, _, v *yaml.Node) {
		out[name] = d.Text(v, what+"."+name)
	})
	return out
}

// Pos returns the position of n (line, column), following aliases.
func Pos(n *yaml.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}

func isNull(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%s %q", tagName(n.Tag), v)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "an unknown node"
}

func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "string"
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "timestamp"
	}
	return "value"
}

func keyList(fields map[string]Field) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
