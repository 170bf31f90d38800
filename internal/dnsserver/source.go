package dnsserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/firebreak/firebreak/internal/routing"
)

// Source delivers routing tables to the server.
//
// Updates returns the same channel on every call. The source sends each new
// table on it (a later table replaces one not yet received, so a slow
// reader only ever sees the newest); it may close the channel when it
// stops, and the server then keeps its last tables. Tables sent are never
// modified afterwards. When the source loses its backing store it sends a
// copy of the last table with Stale set. Implementations must be safe for
// one reader concurrent with their own sender.
type Source interface {
	Updates() <-chan *routing.Table
}

// latest is a one-slot channel where a newer value replaces an unread one.
// It has a single sender.
type latest struct {
	ch chan *routing.Table
}

func newLatest() latest { return latest{ch: make(chan *routing.Table, 1)} }

func (l latest) send(t *routing.Table) {
	for {
		select {
		case l.ch <- t:
			return
		default:
		}
		select {
		case <-l.ch:
		default:
		}
	}
}

// StaticSource serves one fixed routing table.
type StaticSource struct{ l latest }

// NewStaticSource returns a source that delivers t once.
func NewStaticSource(t *routing.Table) *StaticSource {
	s := &StaticSource{l: newLatest()}
	s.l.send(t)
	return s
}

// Updates implements Source.
func (s *StaticSource) Updates() <-chan *routing.Table { return s.l.ch }

// Set delivers a new table (for tests and tools). It must not be called
// concurrently with itself.
func (s *StaticSource) Set(t *routing.Table) { s.l.send(t) }

var _ Source = (*StaticSource)(nil)

// ReadRoutingFile reads a routing table from a JSON file: either a
// routing.Table ({"revision":..,"routes":{...}}) or an object mapping
// service names to routing.Route.
func ReadRoutingFile(path string) (*routing.Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routing file: %w", err)
	}
	return ParseRouting(path, data)
}

// ParseRouting parses routing JSON (see ReadRoutingFile); name is used in
// errors. Unknown fields are rejected.
func ParseRouting(name string, data []byte) (*routing.Table, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse routing %s: %w", name, err)
	}
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	t := &routing.Table{}
	if _, ok := probe["routes"]; ok {
		if err := dec(t); err != nil {
			return nil, fmt.Errorf("parse routing %s: expected a routing table: %w", name, err)
		}
	} else {
		routes := map[string]*routing.Route{}
		if err := dec(&routes); err != nil {
			return nil, fmt.Errorf("parse routing %s: expected service -> route: %w", name, err)
		}
		t.Routes = routes
	}
	if t.Routes == nil {
		t.Routes = map[string]*routing.Route{}
	}
	for svc, r := range t.Routes {
		if r == nil {
			return nil, fmt.Errorf("parse routing %s: route %q is null", name, svc)
		}
		if r.Service == "" {
			r.Service = svc
		}
		t.Revision = max(t.Revision, r.Revision)
	}
	return t, nil
}

// FileSource serves a routing JSON file and reloads it when its contents
// change (checked every interval).
type FileSource struct {
	l        latest
	path     string
	interval time.Duration
	log      *slog.Logger
	done     chan struct{}
	once     sync.Once
	cancel   context.CancelFunc
}

// NewFileSource reads path (an error if it cannot be parsed) and polls it
// every interval (default 1s) until ctx is done or Close is called. A file
// that later fails to parse is logged and the last good table kept.
func NewFileSource(ctx context.Context, path string, interval time.Duration, log *slog.Logger) (*FileSource, error) {
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing file: %w", err)
	}
	t, err := ParseRouting(path, data)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &FileSource{l: newLatest(), path: path, interval: interval, log: log, done: make(chan struct{}), cancel: cancel}
	s.l.send(t)
	go s.run(ctx, data)
	return s, nil
}

// Updates implements Source.
func (s *FileSource) Updates() <-chan *routing.Table { return s.l.ch }

// Close stops polling and waits for the poller; safe to call twice.
func (s *FileSource) Close() error {
	s.once.Do(func() { s.cancel() })
	<-s.done
	return nil
}

func (s *FileSource) run(ctx context.Context, last []byte) {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		data, err := os.ReadFile(s.path)
		if err != nil || bytes.Equal(data, last) {
			continue
		}
		t, err := ParseRouting(s.path, data)
		if err != nil {
			s.log.Warn("dns: routing file not reloaded", "err", err)
			continue
		}
		last = data
		s.l.send(t)
	}
}

var _ Source = (*FileSource)(nil)
