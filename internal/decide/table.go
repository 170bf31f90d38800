package decide

// Table is a dense observation table for one Engine: for each topology node
// (observer) and endpoint, no opinion, up or down. Step reads observations
// from Input.Table when set, which avoids hashing 100,000s of endpoint IDs
// per decision; the Decider keeps one up to date from its watch. Table is
// not safe for concurrent use; do not modify it during Step.
type Table struct {
	e *Engine
	v [][]int8 // [node index][endpoint index]: 0 none, 1 up, -1 down
}

// NewTable returns an empty table for e's topology.
func (e *Engine) NewTable() *Table {
	t := &Table{e: e, v: make([][]int8, len(e.topo.Nodes))}
	for i := range t.v {
		t.v[i] = make([]int8, len(e.eps))
	}
	return t
}

// Set records observer's opinion of endpoint id. Observers and endpoints
// not in the topology are ignored (false).
func (t *Table) Set(observer, id string, up bool) bool {
	oi, ok := t.e.nodeIdx[observer]
	if !ok {
		return false
	}
	i, ok := t.e.epIdx[id]
	if !ok {
		return false
	}
	if up {
		t.v[oi][i] = 1
	} else {
		t.v[oi][i] = -1
	}
	return true
}

// Delete forgets observer's opinion of endpoint id.
func (t *Table) Delete(observer, id string) {
	oi, ok := t.e.nodeIdx[observer]
	if !ok {
		return
	}
	if i, ok := t.e.epIdx[id]; ok {
		t.v[oi][i] = 0
	}
}

// fromMaps builds a table from map observations.
func (e *Engine) tableFrom(obs map[string]map[string]bool) *Table {
	t := e.NewTable()
	for o, m := range obs {
		for id, up := range m {
			t.Set(o, id, up)
		}
	}
	return t
}
