package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The slow path: queries the hot path hands over (TSIG-signed queries and
// zone transfers) are unpacked and answered with miekg/dns. They are rare
// and may allocate.

// axfrChunk is how many records go in one transfer message.
const axfrChunk = 200

// slowAnswer returns the messages answering q: several for a transfer, one
// otherwise, none for a packet that does not deserve an answer.
func (s *Server) slowAnswer(q []byte, client netip.Addr, tcp bool) [][]byte {
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil || len(req.Question) != 1 {
		if len(q) < 12 {
			return nil
		}
		h := make([]byte, 12)
		copy(h, q[:2])
		h[2] = 0x80 | q[2]&0x79
		h[3] = rcodeFormErr
		return [][]byte{h}
	}
	var keyName, secret, reqMAC, alg string
	if t := req.IsTsig(); t != nil {
		keyName, alg = strings.ToLower(t.Hdr.Name), t.Algorithm
		for name, sec := range s.cfg.Transfer.TSIG {
			if strings.EqualFold(name, keyName) {
				secret = sec
			}
		}
		if secret == "" {
			return s.signed(req, dns.RcodeBadKey, keyName, alg)
		}
		if err := dns.TsigVerify(q, secret, "", false); err != nil {
			code := dns.RcodeBadSig
			if errors.Is(err, dns.ErrTime) {
				code = dns.RcodeBadTime
			}
			return s.signed(req, code, keyName, alg)
		}
		reqMAC = t.MAC
	}
	sign := func(m *dns.Msg, prevMAC string, timersOnly bool) ([]byte, string) {
		if secret == "" {
			b, err := m.Pack()
			if err != nil {
				return nil, ""
			}
			return b, ""
		}
		m.Extra = append(m.Extra, tsigStub(keyName, alg, m.Id))
		b, mac, err := dns.TsigGenerate(m, secret, prevMAC, timersOnly)
		if err != nil {
			s.log.Warn("dns: tsig sign", "err", err)
			return nil, ""
		}
		return b, mac
	}
	qt := req.Question[0].Qtype
	tb := s.tables.Load()
	if qt == dns.TypeAXFR || qt == dns.TypeIXFR {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		switch {
		case !tcp:
			resp.Rcode = dns.RcodeNotImplemented
		case tb == nil || !strings.EqualFold(req.Question[0].Name, tb.zone):
			resp.Rcode = dns.RcodeNotAuth
		case !s.transferAllowed(client, secret != ""):
			resp.Rcode = dns.RcodeRefused
		default:
			s.tcpSt.count(qt, dns.RcodeSuccess)
			return s.transfer(req, tb, sign, reqMAC)
		}
		s.tcpSt.count(qt, resp.Rcode)
		b, _ := sign(resp, reqMAC, false)
		return [][]byte{b}
	}
	// A signed ordinary query: answer it through the hot path, then sign.
	req.Extra = req.Extra[:len(req.Extra)-1]
	plain, err := req.Pack()
	if err != nil {
		return nil
	}
	out := make([]byte, 65535)
	w := &worker{stats: s.tcpSt}
	n, _ := w.respond(tb, plain, out, client, tcp)
	if n == 0 {
		return nil
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out[:n]); err != nil {
		return nil
	}
	b, _ := sign(resp, reqMAC, false)
	return [][]byte{b}
}

func tsigStub(keyName, alg string, id uint16) *dns.TSIG {
	return &dns.TSIG{
		Hdr:        dns.RR_Header{Name: keyName, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  alg,
		Fudge:      300,
		TimeSigned: uint64(time.Now().Unix()),
		OrigId:     id,
	}
}

// signed is an error response carrying a TSIG error (RFC 8945 5.3.2: not
// signed with the key for BADKEY and BADSIG).
func (s *Server) signed(req *dns.Msg, tsigErr int, keyName, alg string) [][]byte {
	s.tcpSt.count(req.Question[0].Qtype, dns.RcodeNotAuth)
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeNotAuth)
	t := tsigStub(keyName, alg, req.Id)
	t.Error = uint16(tsigErr)
	resp.Extra = append(resp.Extra, t)
	b, _, err := dns.TsigGenerate(resp, "", "", false)
	if err != nil {
		return nil
	}
	return [][]byte{b}
}

func (s *Server) transferAllowed(client netip.Addr, signed bool) bool {
	if len(s.cfg.Transfer.TSIG) > 0 && !signed {
		return false
	}
	client = client.Unmap()
	for _, p := range s.cfg.Transfer.Allow {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// transfer builds the AXFR messages: SOA, every record, SOA (RFC 5936).
func (s *Server) transfer(req *dns.Msg, tb *tables, sign func(*dns.Msg, string, bool) ([]byte, string), reqMAC string) [][]byte {
	rrs := make([]dns.RR, 0, len(tb.axfr)+1)
	rrs = append(rrs, tb.axfr...)
	rrs = append(rrs, tb.axfr[0])
	var out [][]byte
	mac := reqMAC
	for i := 0; i < len(rrs); i += axfrChunk {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		if i > 0 {
			m.Question = nil
		}
		m.Answer = rrs[i:min(i+axfrChunk, len(rrs))]
		b, newMAC := sign(m, mac, i > 0)
		if b == nil {
			return out
		}
		mac = newMAC
		out = append(out, b)
	}
	return out
}

// slowUDP answers one datagram through the slow path.
func (s *Server) slowUDP(q []byte, client netip.Addr) []byte {
	msgs := s.slowAnswer(q, client, false)
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0]
}

// slowTCP writes the slow-path answer to a TCP connection.
func (s *Server) slowTCP(ctx context.Context, c net.Conn, q []byte, client netip.Addr) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, m := range s.slowAnswer(q, client, true) {
		buf := make([]byte, 2+len(m))
		binary.BigEndian.PutUint16(buf, uint16(len(m)))
		copy(buf[2:], m)
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
