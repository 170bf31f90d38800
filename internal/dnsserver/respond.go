package dnsserver

import (
	"net/netip"
)

// Wire constants used by the hand-written query parser.
const (
	// udpPayload is the EDNS UDP payload size we advertise and the most we
	// send over UDP (DNS flag day 2020).
	udpPayload = 1232
	// minUDP is the classic DNS UDP limit.
	minUDP = 512
	// maxName is the longest wire-format name.
	maxName = 255

	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typeSOA   = 6
	typeTXT   = 16
	typeAAAA  = 28
	typeSRV   = 33
	typeOPT   = 41
	typeTKEY  = 249
	typeTSIG  = 250
	typeIXFR  = 251
	typeAXFR  = 252
	typeMAILB = 253
	typeMAILA = 254
	typeANY   = 255

	classIN = 1

	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16

	optECS = 8
)

// parsed is what the hand parser learned about one query.
type parsed struct {
	qlen    int // bytes of the question section (name + type + class)
	keyLen  int // bytes of the lowercased name in worker.key
	qtype   uint16
	qclass  uint16
	opcode  byte
	edns    bool
	udpSize uint16
	tsig    bool
	badVers bool
	ecs     bool
	ecsFam  uint16
	ecsSrc  byte
	ecsLen  int
	ecsAddr [16]byte
}

// worker is the per-socket state of the hot path. It is used by one
// goroutine at a time.
type worker struct {
	key     [maxName + 3]byte // lowercased name, then the qtype
	counter uint32
	pq      parsed
	stats   *workerStats
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func put16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// parseName reads the question name at off into w.key, lowercased, and
// returns the offset after it. Compression pointers are not accepted in a
// question.
func (w *worker) parseName(q []byte, off int) (int, bool) {
	k := 0
	for {
		if off >= len(q) {
			return 0, false
		}
		l := int(q[off])
		if l == 0 {
			if k+1 > maxName {
				return 0, false
			}
			w.key[k] = 0
			w.pq.keyLen = k + 1
			return off + 1, true
		}
		if l > 63 || off+1+l > len(q) || k+1+l+1 > maxName {
			return 0, false
		}
		w.key[k] = byte(l)
		k++
		for _, c := range q[off+1 : off+1+l] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			w.key[k] = c
			k++
		}
		off += 1 + l
	}
}

// skipName skips a possibly compressed name in a record.
func skipName(q []byte, off int) (int, bool) {
	for {
		if off >= len(q) {
			return 0, false
		}
		l := int(q[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			if off+2 > len(q) {
				return 0, false
			}
			return off + 2, true
		case l > 63:
			return 0, false
		}
		off += 1 + l
	}
}

// parseAdditional reads the additional section for OPT (EDNS) and TSIG.
// It returns false when the section is malformed.
func (w *worker) parseAdditional(q []byte, off int, count int) bool {
	pq := &w.pq
	for i := 0; i < count; i++ {
		nameStart := off
		var ok bool
		off, ok = skipName(q, off)
		if !ok || off+10 > len(q) {
			return false
		}
		typ := be16(q[off:])
		class := be16(q[off+2:])
		ttl := q[off+4 : off+8]
		rdlen := int(be16(q[off+8:]))
		off += 10
		if off+rdlen > len(q) {
			return false
		}
		rd := q[off : off+rdlen]
		off += rdlen
		switch typ {
		case typeOPT:
			if pq.edns || off-rdlen-10-nameStart != 1 || q[nameStart] != 0 {
				return false // a second OPT, or an OPT not owned by the root
			}
			pq.edns = true
			pq.udpSize = class
			pq.badVers = ttl[1] != 0 // EDNS version

			for len(rd) > 0 {
				if len(rd) < 4 {
					return false
				}
				code, ol := be16(rd), int(be16(rd[2:]))
				if 4+ol > len(rd) {
					return false
				}
				if code == optECS {
					if pq.ecs || !w.parseECS(rd[4:4+ol]) {
						return false
					}
				}
				rd = rd[4+ol:]
			}
		case typeTSIG:
			pq.tsig = true
			if i != count-1 {
				return false // TSIG must be the last record
			}
		}
	}
	return true
}

// parseECS validates an EDNS client subnet option (RFC 7871).
func (w *worker) parseECS(b []byte) bool {
	pq := &w.pq
	if len(b) < 4 {
		return false
	}
	fam, src := be16(b), b[2]
	addr := b[4:]
	var maxBits int
	switch fam {
	case 1:
		maxBits = 32
	case 2:
		maxBits = 128
	default:
		return false
	}
	if int(src) > maxBits || len(addr) != (int(src)+7)/8 {
		return false
	}
	pq.ecs = true
	pq.ecsFam = fam
	pq.ecsSrc = src
	pq.ecsLen = len(addr)
	pq.ecsAddr = [16]byte{}
	copy(pq.ecsAddr[:], addr)
	return true
}

// ecsClient is the client address given by ECS.
func (pq *parsed) ecsClient() netip.Addr {
	if pq.ecsFam == 1 {
		return netip.AddrFrom4([4]byte(pq.ecsAddr[:4]))
	}
	return netip.AddrFrom16(pq.ecsAddr)
}

// inZone reports whether the parsed name is at or below the zone apex.
func (w *worker) inZone(zone []byte) bool {
	k := w.key[:w.pq.keyLen]
	for o := 0; o < len(k); o += int(k[o]) + 1 {
		if len(k)-o == len(zone) && string(k[o:]) == string(zone) {
			return true
		}
		if k[o] == 0 {
			break
		}
	}
	return false
}

// respond answers query q from client into out and returns the response
// length; 0 means no response (the packet is not a query). slow is true
// when the query needs the general path (TSIG, zone transfer over TCP).
func (w *worker) respond(tb *tables, q, out []byte, client netip.Addr, tcp bool) (n int, slow bool) {
	w.pq = parsed{}
	pq := &w.pq
	if len(q) < 12 || q[2]&0x80 != 0 {
		return 0, false // too short for a header, or a response
	}
	pq.opcode = (q[2] >> 3) & 0xF
	qd, an, ns, ar := be16(q[4:]), be16(q[6:]), be16(q[8:]), be16(q[10:])
	if qd != 1 {
		if pq.opcode != 0 {
			return w.emit(q, out, nil, rcodeNotImp, false, false, tcp), false
		}
		return w.emit(q, out, nil, rcodeFormErr, false, false, tcp), false
	}
	off, ok := w.parseName(q, 12)
	if !ok || off+4 > len(q) {
		return w.emit(q, out, nil, rcodeFormErr, false, false, tcp), false
	}
	pq.qtype, pq.qclass = be16(q[off:]), be16(q[off+2:])
	pq.qlen = off + 4 - 12
	if pq.opcode != 0 {
		return w.emit(q, out, nil, rcodeNotImp, false, true, tcp), false
	}
	if tcp && (pq.qtype == typeAXFR || pq.qtype == typeIXFR) {
		return 0, true // an IXFR query carries the client's SOA in authority
	}
	if an != 0 || ns != 0 || !w.parseAdditional(q, off+4, int(ar)) {
		pq.edns, pq.ecs = false, false // do not echo a malformed OPT
		return w.emit(q, out, nil, rcodeFormErr, false, true, tcp), false
	}
	if pq.badVers {
		return w.emit(q, out, nil, rcodeBadVers, false, true, tcp), false
	}
	if pq.tsig {
		return 0, true
	}
	if pq.qclass != classIN {
		return w.emit(q, out, nil, rcodeRefused, false, true, tcp), false
	}
	switch pq.qtype {
	case 0, typeOPT, typeTKEY, typeTSIG:
		return w.emit(q, out, nil, rcodeFormErr, false, true, tcp), false
	case typeMAILA, typeMAILB:
		return w.emit(q, out, nil, rcodeNotImp, false, true, tcp), false
	case typeAXFR, typeIXFR:
		if tcp {
			return 0, true
		}
		return w.emit(q, out, nil, rcodeNotImp, false, true, tcp), false
	}
	if tb == nil {
		return w.emit(q, out, nil, rcodeServFail, false, true, tcp), false
	}
	kl := pq.keyLen
	w.key[kl], w.key[kl+1] = byte(pq.qtype>>8), byte(pq.qtype)
	rs := tb.answers[string(w.key[:kl+2])]
	if rs == nil {
		nd := tb.names[string(w.key[:kl])]
		if nd == nil {
			if !w.inZone(tb.zoneWire) {
				return w.emit(q, out, nil, rcodeRefused, false, true, tcp), false
			}
			return w.emit(q, out, tb.nx, rcodeNXDomain, true, true, tcp), false
		}
		if nd.cname == nil {
			return w.emit(q, out, nd.nodata, rcodeNoError, true, true, tcp), false
		}
		rs = nd.cname
	}
	var t *tmpl
	scoped := false
	switch rs.sel {
	case selOne:
		t = &rs.variants[0]
	case selRotate:
		w.counter++
		t = &rs.variants[rs.schedule[w.counter%uint32(rs.nsched)]]
	case selSite:
		scoped = true
		addr := client
		if pq.ecs {
			addr = pq.ecsClient()
		}
		t = &rs.variants[0]
		if addr.IsValid() {
			addr = addr.Unmap()
			for _, p := range tb.prefixes {
				if p.p.Contains(addr) {
					if int(p.site) < len(rs.bySite) {
						t = &rs.variants[rs.bySite[p.site]]
					}
					break
				}
			}
		}
	}
	return w.emitScoped(q, out, t, int(t.rcode), true, true, tcp, scoped), false
}

func (w *worker) emit(q, out []byte, t *tmpl, rcode int, aa, withQ, tcp bool) int {
	return w.emitScoped(q, out, t, rcode, aa, withQ, tcp, false)
}

// emitScoped writes the response header, the query's own question bytes
// (so the client's letter case is preserved), the template's sections
// (dropping the additional section, then everything, with TC, when a UDP
// response would not fit) and an OPT record when the query had one.
func (w *worker) emitScoped(q, out []byte, t *tmpl, rcode int, aa, withQ, tcp, scoped bool) int {
	pq := &w.pq
	if len(out) < 12 {
		return 0
	}
	limit := len(out)
	if !tcp {
		l := minUDP
		if pq.edns && pq.udpSize > minUDP {
			l = int(min(pq.udpSize, udpPayload))
		}
		limit = min(limit, l)
	}
	out[0], out[1] = q[0], q[1]
	b2 := 0x80 | pq.opcode<<3 | q[2]&0x01
	if aa {
		b2 |= 0x04
	}
	out[2] = b2
	out[3] = q[3]&0x10 | byte(rcode&0xF)
	n := 12
	qd := uint16(0)
	if withQ && pq.qlen > 0 && 12+pq.qlen <= limit {
		n += copy(out[12:], q[12:12+pq.qlen])
		qd = 1
	}
	optLen := 0
	if pq.edns {
		optLen = 11
		if pq.ecs {
			optLen += 8 + pq.ecsLen
		}
	}
	var an, ns, ar uint16
	if t != nil {
		body := t.rest
		an, ns, ar = t.an, t.ns, t.ar
		if n+len(body)+optLen > limit {
			body, ar = t.rest[:t.cut], 0
			if n+len(body)+optLen > limit {
				body, an, ns = nil, 0, 0
				out[2] |= 0x02 // TC
			}
		}
		n += copy(out[n:], body)
	}
	if pq.edns && n+optLen <= len(out) {
		o := out[n:]
		o[0] = 0
		put16(o[1:], typeOPT)
		put16(o[3:], udpPayload)
		o[5] = byte(rcode >> 4) // extended rcode
		o[6], o[7], o[8] = 0, 0, 0
		put16(o[9:], uint16(optLen-11))
		if pq.ecs {
			put16(o[11:], optECS)
			put16(o[13:], uint16(4+pq.ecsLen))
			put16(o[15:], pq.ecsFam)
			o[17] = pq.ecsSrc
			if scoped {
				o[18] = pq.ecsSrc
			} else {
				o[18] = 0
			}
			copy(o[19:], pq.ecsAddr[:pq.ecsLen])
		}
		n += optLen
		ar++
	}
	put16(out[4:], qd)
	put16(out[6:], an)
	put16(out[8:], ns)
	put16(out[10:], ar)
	if w.stats != nil {
		w.stats.count(pq.qtype, rcode)
	}
	return n
}

// slip rewrites a response in out as an empty truncated one (for RRL): the
// client may retry over TCP, which is not rate limited.
func (w *worker) slip(out []byte, n int) int {
	if n < 12 {
		return n
	}
	out[2] |= 0x02
	put16(out[6:], 0)
	put16(out[8:], 0)
	put16(out[10:], 0)
	if be16(out[4:]) == 1 {
		return min(n, 12+w.pq.qlen)
	}
	return 12
}
