package node

import (
	"fmt"
	"strconv"
)

func parseRev(b []byte) (int64, error) {
	r, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("topology revision %q: %w", b, err)
	}
	return r, nil
}
