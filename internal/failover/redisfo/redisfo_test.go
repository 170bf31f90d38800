package redisfo

import "testing"

func TestParseInfo(t *testing.T) {
	in := "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\nmaster_repl_offset:42\r\n\r\n"
	kv := ParseInfo(in)
	if kv["role"] != "master" || kv["master_repl_offset"] != "42" || kv["slave0"] != "ip=127.0.0.1,port=6380,state=online,offset=42,lag=0" {
		t.Fatalf("ParseInfo = %v", kv)
	}
	if len(ParseInfo("")) != 0 {
		t.Fatal("empty input gives keys")
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\n")
	f.Add(":::\n#\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		for k := range ParseInfo(s) {
			if k == "" && len(s) == 0 {
				t.Fatal("key from empty input")
			}
		}
	})
}
