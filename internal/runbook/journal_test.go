package runbook

import (
	"testing"
	"time"
)

func FuzzBatchRoundTrip(f *testing.F) {
	f.Add("srv1", "boom", 3, 2, byte('D'))
	f.Add("a\tb\nc", "multi\nline\r\terror", 0, 0, byte('F'))
	f.Add("", "", 1<<20, 255, byte('S'))
	f.Fuzz(func(t *testing.T, target, msg string, step, attempt int, ev byte) {
		if step < 0 || attempt < 0 {
			return
		}
		at := time.UnixMilli(1700000000123)
		in := Record{Event: ev, Step: step, Attempt: attempt, Target: target, Msg: msg}
		var out []Record
		err := decodeBatch(encodeBatch(at, []Record{in}), func(r Record) error { out = append(out, r); return nil })
		if ev == '\n' || ev == 'T' || ev == '\t' || ev == '\r' {
			return // not an event byte the runner writes
		}
		if err != nil || len(out) != 1 {
			t.Fatalf("decode: %v, %d records", err, len(out))
		}
		r := out[0]
		if r.Event != ev || r.Step != step || r.Attempt != attempt || r.Target != clean(target) || r.Msg != clean(msg) || !r.At.Equal(at) {
			t.Fatalf("round trip: %+v -> %+v", in, r)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte("T 1700000000000\nD\t1\t2\tsrv\t\n"))
	f.Add([]byte("T x\n"))
	f.Add([]byte("D\t1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = decodeBatch(data, func(Record) error { return nil })
	})
}
