package runbook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Journal persists runs: the spec a run was started with, the log of
// target×step transitions, the run's state, and the operator's control
// requests. Implementations must be safe for concurrent use.
//
// Exactly one runner writes a run's log and state at a time: Claim makes the
// caller that writer and fences out the previous one, whose later Append and
// SetState calls fail with ErrFenced.
type Journal interface {
	// Create stores a new run's spec; ErrRunExists if the id is taken.
	Create(ctx context.Context, id string, spec []byte) error
	// Spec returns a run's spec; ErrNoRun if there is no such run.
	Spec(ctx context.Context, id string) ([]byte, error)
	// Claim makes owner the run's only writer and returns the sequence
	// number the next log batch must use.
	Claim(ctx context.Context, id, owner string) (next uint64, err error)
	// Append stores one batch of encoded records at seq, atomically, if
	// owner still holds the claim (ErrFenced otherwise).
	Append(ctx context.Context, id, owner string, seq uint64, batch []byte) error
	// Read calls fn for each batch from sequence from on, in order, and
	// returns the sequence after the last one read.
	Read(ctx context.Context, id string, from uint64, fn func(seq uint64, batch []byte) error) (next uint64, err error)
	// SetState stores the run's state if owner holds the claim.
	SetState(ctx context.Context, id, owner string, st State) error
	// State returns the run's state (zero State if none was written).
	State(ctx context.Context, id string) (State, error)
	// SetControl records an operator's request: ControlRun, ControlPause
	// or ControlAbort.
	SetControl(ctx context.Context, id, cmd string) error
	// WatchControl sends the current control request, then every change,
	// until ctx is done; the channel is then closed.
	WatchControl(ctx context.Context, id string) <-chan string
	// List returns the ids of every run, sorted.
	List(ctx context.Context) ([]string, error)
}

// Journal errors.
var (
	ErrRunExists = errors.New("run already exists")
	ErrNoRun     = errors.New("no such run")
	ErrFenced    = errors.New("run claimed by another runner")
	ErrAborted   = errors.New("run aborted")
)

// Control requests.
const (
	ControlRun   = "run"
	ControlPause = "pause"
	ControlAbort = "abort"
)

// Run statuses.
const (
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusAborted = "aborted"
	StatusDone    = "done"   // every target of every step succeeded
	StatusFailed  = "failed" // finished, with failed or blocked targets
)

// State is a run's state as stored.
type State struct {
	Status  string    `json:"status"`
	Owner   string    `json:"owner"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Message string    `json:"message,omitempty"`
}

// Events of the transition log.
const (
	// EvStart: a non-idempotent action is about to run. It is durable
	// before the action runs, so that a resuming runner knows to verify.
	EvStart = 'S'
	// EvDone: the action ran and its verification passed.
	EvDone = 'D'
	// EvRetry: an attempt failed; another will follow.
	EvRetry = 'R'
	// EvFail: the target failed the step for good.
	EvFail = 'F'
)

// Record is one target×step transition.
type Record struct {
	Event   byte
	Step    int
	Attempt int
	Target  string
	Msg     string
	// At is the time of the batch the record was written in.
	At time.Time
}

// encodeBatch encodes records as text: a "T <unix ms>" line, then one line
// per record "E<TAB>step<TAB>attempt<TAB>target<TAB>message".
func encodeBatch(at time.Time, recs []Record) []byte {
	var b bytes.Buffer
	b.Grow(16 + len(recs)*32)
	b.WriteString("T ")
	b.WriteString(strconv.FormatInt(at.UnixMilli(), 10))
	b.WriteByte('\n')
	for _, r := range recs {
		b.WriteByte(r.Event)
		b.WriteByte('\t')
		b.WriteString(strconv.Itoa(r.Step))
		b.WriteByte('\t')
		b.WriteString(strconv.Itoa(r.Attempt))
		b.WriteByte('\t')
		b.WriteString(clean(r.Target))
		b.WriteByte('\t')
		b.WriteString(clean(r.Msg))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func clean(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// decodeBatch decodes a batch written by encodeBatch.
func decodeBatch(data []byte, fn func(Record) error) error {
	var at time.Time
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == 'T' {
			ms, err := strconv.ParseInt(strings.TrimSpace(string(line[1:])), 10, 64)
			if err != nil {
				return fmt.Errorf("decode batch: bad time line %q", line)
			}
			at = time.UnixMilli(ms)
			continue
		}
		f := strings.SplitN(string(line), "\t", 5)
		if len(f) != 5 || len(f[0]) != 1 {
			return fmt.Errorf("decode batch: bad record %q", line)
		}
		step, err1 := strconv.Atoi(f[1])
		att, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("decode batch: bad record %q", line)
		}
		if err := fn(Record{Event: f[0][0], Step: step, Attempt: att, Target: f[3], Msg: f[4], At: at}); err != nil {
			return err
		}
	}
	return nil
}
