package runbook

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress is a run's progress, for the terminal and the dashboard.
type Progress struct {
	RunID   string         `json:"runId"`
	Runbook string         `json:"runbook"`
	Status  string         `json:"status"`
	Steps   []StepProgress `json:"steps"`
	// Failures are the most recent failures, newest last (at most
	// MaxFailures): final ones and retried attempts.
	Failures []Failure `json:"failures,omitempty"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	// ETA is the estimated time left, from the rate so far; 0 if unknown.
	ETA time.Duration `json:"eta"`
}

// StepProgress counts one step's targets by state.
type StepProgress struct {
	Name    string `json:"name"`
	Total   int    `json:"total"`
	Done    int    `json:"done"`
	Running int    `json:"running"`
	Failed  int    `json:"failed"`
	// Blocked targets wait for a dependency that failed.
	Blocked int `json:"blocked"`
	// Retries counts failed attempts that were retried.
	Retries int `json:"retries"`
}

// Failure is one failed attempt or target.
type Failure struct {
	Step   string `json:"step"`
	Target string `json:"target"`
	Final  bool   `json:"final"`
	Reason string `json:"reason"`
}

// MaxFailures bounds Progress.Failures.
const MaxFailures = 20

// Totals sums the steps.
func (p Progress) Totals() StepProgress {
	var t StepProgress
	for _, s := range p.Steps {
		t.Total += s.Total
		t.Done += s.Done
		t.Running += s.Running
		t.Failed += s.Failed
		t.Blocked += s.Blocked
		t.Retries += s.Retries
	}
	return t
}

func addFailure(list []Failure, f Failure) []Failure {
	list = append(list, f)
	if len(list) > MaxFailures {
		list = append(list[:0], list[len(list)-MaxFailures:]...)
	}
	return list
}

// Render writes p as bars, one per step, then totals, ETA and failures.
// width is the bar width in characters.
func (p Progress) Render(w io.Writer, width int) {
	if width < 10 {
		width = 10
	}
	nameW := 4
	for _, s := range p.Steps {
		nameW = max(nameW, len(s.Name))
	}
	fmt.Fprintf(w, "run %s (%s): %s\n", p.RunID, p.Runbook, p.Status)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "  %-*s %s %6d/%-6d", nameW, s.Name, bar(s, width), s.Done, s.Total)
		if s.Running > 0 {
			fmt.Fprintf(w, " running %d", s.Running)
		}
		if s.Failed > 0 {
			fmt.Fprintf(w, " failed %d", s.Failed)
		}
		if s.Blocked > 0 {
			fmt.Fprintf(w, " blocked %d", s.Blocked)
		}
		if s.Retries > 0 {
			fmt.Fprintf(w, " retries %d", s.Retries)
		}
		fmt.Fprintln(w)
	}
	t := p.Totals()
	elapsed := p.Updated.Sub(p.Started).Truncate(time.Second)
	fmt.Fprintf(w, "  total %d/%d done, %d failed, %d blocked, elapsed %s", t.Done, t.Total, t.Failed, t.Blocked, elapsed)
	if p.ETA > 0 {
		fmt.Fprintf(w, ", ETA %s", p.ETA.Round(time.Second))
	}
	fmt.Fprintln(w)
	for _, f := range p.Failures {
		kind := "retry"
		if f.Final {
			kind = "FAILED"
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", kind, f.Step, f.Target, f.Reason)
	}
}

func bar(s StepProgress, width int) string {
	if s.Total == 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	done := s.Done * width / s.Total
	bad := (s.Failed + s.Blocked) * width / s.Total
	if done+bad > width {
		bad = width - done
	}
	return "[" + strings.Repeat("#", done) + strings.Repeat("x", bad) + strings.Repeat(".", width-done-bad) + "]"
}

// Line is a one-line summary, for logs and non-terminal output.
func (p Progress) Line() string {
	t := p.Totals()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d/%d done, %d running, %d failed, %d blocked", p.RunID, p.Status, t.Done, t.Total, t.Running, t.Failed, t.Blocked)
	if p.ETA > 0 {
		fmt.Fprintf(&b, ", ETA %s", p.ETA.Round(time.Second))
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "; %s %d/%d", s.Name, s.Done, s.Total)
	}
	return b.String()
}
