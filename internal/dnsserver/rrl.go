package dnsserver

import (
	"net/netip"
	"sync/atomic"
)

// RRLConfig configures response-rate limiting of UDP answers per client
// prefix, which blunts the use of the server as a reflection amplifier.
// TCP is never limited, so a legitimate client told to retry (a "slipped",
// truncated answer) still gets its answer.
type RRLConfig struct {
	// ResponsesPerSecond is the most UDP responses per second one client
	// prefix gets. 0 (the default) turns rate limiting off.
	ResponsesPerSecond int
	// Slip: every Slip-th response over the limit is sent as an empty
	// truncated answer instead of being dropped (default 2; 1 slips every
	// limited response; a negative value drops them all).
	Slip int
	// IPv4PrefixLen and IPv6PrefixLen group client addresses (defaults 24
	// and 56).
	IPv4PrefixLen, IPv6PrefixLen int
	// Buckets is the size of the counter table (default 65536). Prefixes
	// that hash to the same bucket share one limit.
	Buckets int
}

func (c *RRLConfig) withDefaults() RRLConfig {
	r := *c
	if r.Slip == 0 {
		r.Slip = 2
	}
	if r.IPv4PrefixLen <= 0 || r.IPv4PrefixLen > 32 {
		r.IPv4PrefixLen = 24
	}
	if r.IPv6PrefixLen <= 0 || r.IPv6PrefixLen > 128 {
		r.IPv6PrefixLen = 56
	}
	if r.Buckets <= 0 {
		r.Buckets = 1 << 16
	}
	return r
}

// rrl is a fixed table of per-second counters; lock-free and allocation
// free. Each bucket holds second<<32 | count.
type rrl struct {
	cfg     RRLConfig
	buckets []atomic.Uint64
}

func newRRL(c RRLConfig) *rrl {
	if c.ResponsesPerSecond <= 0 {
		return nil
	}
	c = c.withDefaults()
	return &rrl{cfg: c, buckets: make([]atomic.Uint64, c.Buckets)}
}

// Verdicts of rrl.check.
const (
	rrlSend = iota
	rrlSlip
	rrlDrop
)

// check counts one response to addr at second now and says what to do.
func (r *rrl) check(addr netip.Addr, now uint32) int {
	addr = addr.Unmap()
	bits := r.cfg.IPv6PrefixLen
	if addr.Is4() {
		bits = r.cfg.IPv4PrefixLen
	}
	a := addr.As16()
	if addr.Is4() {
		bits += 96
	}
	// FNV-1a over the prefix bits.
	h := uint64(14695981039346656037)
	for i := 0; i < 16; i++ {
		b := a[i]
		switch {
		case bits >= (i+1)*8:
		case bits <= i*8:
			b = 0
		default:
			b &= byte(0xFF << (8 - (bits - i*8)))
		}
		h ^= uint64(b)
		h *= 1099511628211
	}
	bk := &r.buckets[h%uint64(len(r.buckets))]
	var count uint32
	for {
		old := bk.Load()
		sec, c := uint32(old>>32), uint32(old)
		if sec != now {
			c = 0
		}
		c++
		if bk.CompareAndSwap(old, uint64(now)<<32|uint64(c)) {
			count = c
			break
		}
	}
	if int(count) <= r.cfg.ResponsesPerSecond {
		return rrlSend
	}
	if r.cfg.Slip > 0 && (int(count)-r.cfg.ResponsesPerSecond)%r.cfg.Slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}
