package viewtest

import "testing"

func TestSampleParses(t *testing.T) {
	tp := SampleTopology()
	if len(tp.Services) != 3 {
		t.Fatal(len(tp.Services))
	}
}
