package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/firebreak/firebreak/internal/failover"
	"github.com/firebreak/firebreak/internal/topology"
)

func TestParseFenceExec(t *testing.T) {
	top, err := topology.Load(filepath.Join("..", "..", "examples", "fixed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Datastores) == 0 {
		t.Skip("example has no datastores")
	}
	ds := top.Datastores[0].Name
	for _, tc := range []struct {
		vals []string
		err  string
		argv []string
	}{
		{nil, "", nil},
		{[]string{ds + "=/usr/local/bin/pdu-off --outlet 3"}, "", []string{"/usr/local/bin/pdu-off", "--outlet", "3"}},
		{[]string{"no-equals"}, "expected DATASTORE=COMMAND", nil},
		{[]string{ds + "="}, "expected DATASTORE=COMMAND", nil},
		{[]string{"nosuchdatastore=true"}, `no datastore "nosuchdatastore"`, nil},
	} {
		got, err := parseFenceExec(top, tc.vals)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.vals, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.vals, err)
			continue
		}
		if tc.argv == nil {
			if got != nil {
				t.Errorf("%v: %v, want none", tc.vals, got)
			}
			continue
		}
		ef, ok := got[ds].(failover.ExecFencer)
		if !ok || strings.Join(ef.Command, " ") != strings.Join(tc.argv, " ") {
			t.Errorf("%v: %#v", tc.vals, got)
		}
	}
}
