//go:build !linux

package dnsserver

import (
	"errors"
	"net"
)

// omitPMTU is Linux-only; elsewhere the kernel default stays.
func omitPMTU(int, string) error { return nil }

// serveUDP is one worker without batched I/O (non-Linux systems).
func (s *Server) serveUDP(c *net.UDPConn, st *workerStats) {
	in := make([]byte, 4096)
	out := make([]byte, 4096)
	w := &worker{stats: st}
	for {
		n, from, err := c.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		client := from.Addr()
		olen, slow := w.respond(s.tables.Load(), in[:n], out, client, false)
		if slow {
			olen = 0
			if m := s.slowUDP(in[:n], client); len(m) <= len(out) {
				olen = copy(out, m)
			}
		}
		if olen > 0 {
			_, _ = c.WriteToUDPAddrPort(out[:olen], from)
		}
	}
}
