package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
)

// Exec runs a local command. Its one operation, "run", takes:
//
//	command  the command line, split on spaces after ${...} expansion
//	         (required); with shell: "true" it is passed to /bin/sh -c.
//	shell    "true" to run command through /bin/sh -c (default false).
//
// Exit status 0 is success; otherwise the error carries the last line of
// standard error.
type Exec struct{}

// Ops lists Exec's operations.
func (Exec) Ops() []string { return []string{"run"} }

// Do runs the command.
func (e Exec) Do(ctx context.Context, t Target, op string, p Params) error {
	if op != "run" {
		return unknownOp("exec", op, e.Ops())
	}
	line := Expand(p["command"], t)
	if strings.TrimSpace(line) == "" {
		return Permanent(errors.New("exec: parameter command is empty"))
	}
	var cmd *exec.Cmd
	if p["shell"] == "true" {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", line)
	} else {
		argv := strings.Fields(line)
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("exec %s: %w", line, ctx.Err())
		}
		var nf *exec.Error
		if errors.As(err, &nf) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return Permanent(fmt.Errorf("exec %s: %w", line, err))
		}
		return fmt.Errorf("exec %s: %w%s", line, err, lastLine(stderr.String()))
	}
	return nil
}

// lastLine returns ": <last non-empty line>" of s, or "".
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return ": " + s
}

var _ Driver = Exec{}
