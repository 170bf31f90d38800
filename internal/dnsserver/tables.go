package dnsserver

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/firebreak/firebreak/internal/routing"
	"github.com/firebreak/firebreak/internal/topology"
)

// maxRotations bounds the precomputed orderings of one answer.
const maxRotations = 16

// maxTargets bounds the targets in one answer, so that every answer (SRV
// with glue included) fits a 64 KiB TCP message; rotation still spreads
// clients over the first maxTargets of each ordering.
const maxTargets = 256

// tmpl is one precompiled answer: everything after the question section.
// Names inside rest may be compressed against the question name at offset
// 12, which is why a template is only used for a query whose question has
// the same length (the same name, in any letter case).
type tmpl struct {
	rcode      byte
	an, ns, ar uint16
	// rest holds the answer, authority and additional sections, packed.
	rest []byte
	// cut is the length of rest without the additional section, used when
	// the whole answer does not fit a UDP response.
	cut int
}

// selKind says how a variant of an rrset is chosen per query.
type selKind uint8

const (
	selOne    selKind = iota // a single variant
	selRotate                // schedule[counter % len(schedule)]
	selSite                  // bySite[client site], default variant 0
)

// rrset holds the answer variants of one (name, type). It is laid out so
// that a query touches few cache lines: the schedule is inline, the
// variants are values, and their bytes share one allocation.
type rrset struct {
	qtype    uint16
	sel      selKind
	nsched   uint8
	schedule [maxRotations]uint8 // for selRotate: slot -> variant
	bySite   []uint8             // for selSite: site index -> variant
	variants []tmpl
}

// node is one existing name in the zone, for the answers that are not
// keyed by (name, type): NODATA, and the CNAME of an alias.
type node struct {
	cname  *rrset // set for alias names: answers every type without its own set
	nodata *tmpl
}

// sitePrefix maps a client network to a site index (for nearest).
type sitePrefix struct {
	p    netip.Prefix
	site uint8
}

// tables is one immutable, compiled view of the zone. It is swapped
// atomically as a whole and never changed after build.
type tables struct {
	zone     string            // lowercase FQDN
	zoneWire []byte            // lowercase wire format
	names    map[string]*node  // key: lowercase wire name
	answers  map[string]*rrset // key: lowercase wire name + qtype (2 bytes)
	nx       *tmpl             // NXDOMAIN; rest is uncompressed so it fits any question
	prefixes []sitePrefix
	sites    []string

	revision   int64
	stale      bool
	staleSince time.Time
	built      time.Time

	// axfr is every record of the zone (first variant of each set), SOA
	// first, for zone transfers.
	axfr []dns.RR
}

// zoneRR is an rrset under construction: its record variants.
type zoneRR struct {
	qtype    uint16
	sel      selKind
	variants [][]dns.RR
	extra    [][]dns.RR // additional section per variant (may be nil)
	schedule []uint8
	bySite   []uint8
}

// zoneName is a name under construction.
type zoneName struct {
	name  string
	sets  map[uint16]*zoneRR
	alias string // CNAME target, for alias names
}

// builder assembles the zone from topology and routing, then compiles it.
type builder struct {
	t     *topology.Topology
	rt    *routing.Table
	zone  string
	ttl   uint32
	names map[string]*zoneName
	order []string
	sites []string
	soa   *dns.SOA
	txt   []string
	// nodata is the NODATA template shared by every name (uncompressed SOA).
	nodata *tmpl
}

// build compiles the answer tables for topology t and routing rt. rt may be
// nil (no routing yet: every declared endpoint is answered).
func build(t *topology.Topology, rt *routing.Table) (*tables, error) {
	if t == nil || t.DNS.Zone == "" {
		return nil, fmt.Errorf("build dns tables: topology has no dns zone")
	}
	if rt == nil {
		rt = &routing.Table{}
	}
	zone := dns.CanonicalName(t.DNS.Zone)
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("build dns tables: zone %q is not a domain name", zone)
	}
	ttl := uint32(t.DNS.TTL / time.Second)
	if t.DNS.TTL <= 0 {
		ttl = uint32(topology.DefaultTTL / time.Second)
	}
	b := &builder{t: t, rt: rt, zone: zone, ttl: ttl, names: map[string]*zoneName{}}
	for _, s := range t.Datacenters() {
		b.sites = append(b.sites, s.Name)
	}
	if len(b.sites) > 250 {
		b.sites = b.sites[:250]
	}
	b.txt = stateTXT(rt)
	if err := b.apex(); err != nil {
		return nil, err
	}
	for _, s := range t.Services {
		b.service(s)
	}
	for _, d := range t.Datastores {
		b.datastore(d)
	}
	return b.compile()
}

// stateTXT is the TXT text describing the routing state.
func stateTXT(rt *routing.Table) []string {
	out := []string{"revision=" + strconv.FormatInt(rt.Revision, 10)}
	if rt.Stale {
		since := rt.StaleSince
		if since.IsZero() {
			since = time.Now()
		}
		out = append(out, "stale since "+since.UTC().Format(time.RFC3339))
	} else {
		out = append(out, "fresh")
	}
	return out
}

// owner turns a topology DNS name into a lowercase FQDN in the zone; ok is
// false when the name is not in the zone.
func (b *builder) owner(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	var fq string
	if strings.HasSuffix(name, ".") {
		fq = dns.CanonicalName(name)
	} else {
		fq = dns.CanonicalName(name + "." + b.zone)
	}
	if _, ok := dns.IsDomainName(fq); !ok || !dns.IsSubDomain(b.zone, fq) {
		return "", false
	}
	return fq, true
}

func (b *builder) get(name string) *zoneName {
	n := b.names[name]
	if n == nil {
		n = &zoneName{name: name, sets: map[uint16]*zoneRR{}}
		b.names[name] = n
		b.order = append(b.order, name)
		// Empty non-terminals between name and the apex exist too.
		if name != b.zone {
			if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
				parent := name[i+1:]
				if dns.IsSubDomain(b.zone, parent) {
					b.get(parent)
				}
			}
		}
	}
	return n
}

func (b *builder) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: b.ttl}
}

func (b *builder) apex() error {
	apex := b.get(b.zone)
	var nss []dns.RR
	var glue []dns.RR
	for _, nd := range b.t.Nodes {
		if nd.DNS == "" {
			continue
		}
		host := nd.DNS
		if h, _, err := splitHostPortLoose(nd.DNS); err == nil {
			host = h
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			label := strings.ToLower(nd.Name)
			nsName, ok := b.owner(label + ".ns")
			if !ok {
				continue
			}
			nss = append(nss, &dns.NS{Hdr: b.hdr(b.zone, dns.TypeNS), Ns: nsName})
			rr := addrRR(b.hdr(nsName, 0), ip)
			glue = append(glue, rr)
			b.set(nsName, rr.Header().Rrtype).variants = [][]dns.RR{{rr}}
		} else if _, ok := dns.IsDomainName(host); ok {
			nss = append(nss, &dns.NS{Hdr: b.hdr(b.zone, dns.TypeNS), Ns: dns.CanonicalName(host)})
		}
	}
	if len(nss) == 0 {
		nss = append(nss, &dns.NS{Hdr: b.hdr(b.zone, dns.TypeNS), Ns: "ns." + b.zone})
	}
	serial := uint32(b.rt.Revision)
	if serial == 0 {
		serial = 1
	}
	b.soa = &dns.SOA{
		Hdr:     b.hdr(b.zone, dns.TypeSOA),
		Ns:      nss[0].(*dns.NS).Ns,
		Mbox:    "hostmaster." + b.zone,
		Serial:  serial,
		Refresh: 60,
		Retry:   10,
		Expire:  3600,
		Minttl:  b.ttl,
	}
	apex.sets[dns.TypeSOA] = &zoneRR{qtype: dns.TypeSOA, variants: [][]dns.RR{{b.soa}}}
	apex.sets[dns.TypeNS] = &zoneRR{qtype: dns.TypeNS, variants: [][]dns.RR{nss}, extra: [][]dns.RR{glue}}
	apex.sets[dns.TypeTXT] = &zoneRR{qtype: dns.TypeTXT, variants: [][]dns.RR{{&dns.TXT{Hdr: b.hdr(b.zone, dns.TypeTXT), Txt: b.txt}}}}
	return nil
}

func (b *builder) set(name string, t uint16) *zoneRR {
	n := b.get(name)
	s := n.sets[t]
	if s == nil {
		s = &zoneRR{qtype: t}
		n.sets[t] = s
	}
	return s
}

func addrRR(h dns.RR_Header, ip netip.Addr) dns.RR {
	if ip.Is4() || ip.Is4In6() {
		h.Rrtype = dns.TypeA
		a := ip.Unmap().As4()
		return &dns.A{Hdr: h, A: a[:]}
	}
	h.Rrtype = dns.TypeAAAA
	a := ip.As16()
	return &dns.AAAA{Hdr: h, AAAA: a[:]}
}

// hostTarget is one answer target with its SRV host name.
type hostTarget struct {
	routing.Target
	ip   netip.Addr
	host string // endpoint host name for SRV, "" if none
}

func (b *builder) service(s *topology.Service) {
	owner, ok := b.owner(s.DNSName)
	if !ok {
		return
	}
	// Endpoint host names: <site>-<n>.<owner>, static from the topology.
	hosts := map[string]string{}
	perSite := map[string]int{}
	for _, e := range s.Endpoints {
		perSite[e.Site]++
		h, ok := b.owner(strings.ToLower(e.Site) + "-" + strconv.Itoa(perSite[e.Site]) + "." + owner)
		if !ok {
			continue
		}
		hosts[e.ID()] = h
		if ip, err := netip.ParseAddr(e.Address); err == nil {
			rr := addrRR(b.hdr(h, 0), ip)
			b.set(h, rr.Header().Rrtype).variants = [][]dns.RR{{rr}}
		} else if _, ok := dns.IsDomainName(e.Address); ok {
			b.get(h).alias = dns.CanonicalName(e.Address)
		}
	}
	route := b.rt.Routes[s.Name]
	var targets []routing.Target
	var bySite map[string][]routing.Target
	policy := s.Policy
	if route != nil {
		targets, bySite = route.Targets, route.BySite
	} else {
		for _, e := range s.Endpoints {
			targets = append(targets, routing.Target{ID: e.ID(), Site: e.Site, Address: e.Address, Port: e.Port, Weight: e.Weight})
		}
	}
	b.addService(owner, s.Name, policy, route, targets, bySite, hosts)
	for _, a := range s.Aliases {
		an, ok := b.owner(strings.ToLower(a))
		if !ok || an == owner {
			continue
		}
		b.get(an).alias = owner
	}
}

func (b *builder) datastore(d *topology.Datastore) {
	owner, ok := b.owner(d.DNSName)
	if !ok {
		return
	}
	route := b.rt.Routes[d.Name]
	var targets []routing.Target
	if route != nil {
		targets = route.Targets
	} else {
		targets = []routing.Target{{ID: d.Name + "/" + d.Primary, Site: d.Primary, Address: d.Address, Port: d.Port}}
	}
	b.addService(owner, d.Name, topology.PolicyFailover, route, targets, nil, nil)
}

func resolve(ts []routing.Target, hosts map[string]string) []hostTarget {
	out := make([]hostTarget, 0, len(ts))
	for _, t := range ts {
		ht := hostTarget{Target: t, host: hosts[t.ID]}
		if ip, err := netip.ParseAddr(t.Address); err == nil {
			ht.ip = ip
		}
		out = append(out, ht)
	}
	return out
}

func (b *builder) addService(owner, name, policy string, route *routing.Route, targets []routing.Target, bySite map[string][]routing.Target, hosts map[string]string) {
	all := resolve(targets, hosts)
	var orders [][]hostTarget
	var sched, sites []uint8
	sel := selOne
	switch policy {
	case topology.PolicyFailover:
		if len(all) > 0 {
			first := all[0].Site
			var keep []hostTarget
			for _, t := range all {
				if t.Site == first {
					keep = append(keep, t)
				}
			}
			all = keep
		}
		orders, sched = rotations(all)
	case topology.PolicyNearest:
		orders = [][]hostTarget{all}
		sites = make([]uint8, len(b.sites))
		for i, site := range b.sites {
			if ts := bySite[site]; len(ts) > 0 {
				orders = append(orders, resolve(ts, hosts))
				sites[i] = uint8(len(orders) - 1)
			}
		}
		sel = selSite
	default:
		orders, sched = rotations(all)
	}
	if sel != selSite && len(sched) > 1 {
		sel = selRotate
	}
	mk := func(t uint16) *zoneRR {
		return &zoneRR{qtype: t, sel: sel, schedule: sched, bySite: sites}
	}
	a, aaaa, srv := mk(dns.TypeA), mk(dns.TypeAAAA), mk(dns.TypeSRV)
	for _, ord := range orders {
		if len(ord) > maxTargets {
			ord = ord[:maxTargets]
		}
		var va, vaaaa, vsrv, vglue []dns.RR
		for _, t := range ord {
			if t.ip.IsValid() {
				rr := addrRR(b.hdr(owner, 0), t.ip)
				if rr.Header().Rrtype == dns.TypeA {
					va = append(va, rr)
				} else {
					vaaaa = append(vaaaa, rr)
				}
			}
			if t.host != "" && t.Port > 0 {
				w := t.Weight
				if w <= 0 {
					w = 1
				}
				if w > 65535 {
					w = 65535
				}
				vsrv = append(vsrv, &dns.SRV{Hdr: b.hdr(owner, dns.TypeSRV), Priority: 0, Weight: uint16(w), Port: uint16(t.Port), Target: t.host})
				if t.ip.IsValid() {
					vglue = append(vglue, addrRR(b.hdr(t.host, 0), t.ip))
				}
			}
		}
		a.variants = append(a.variants, va)
		aaaa.variants = append(aaaa.variants, vaaaa)
		srv.variants = append(srv.variants, vsrv)
		srv.extra = append(srv.extra, vglue)
	}
	n := b.get(owner)
	n.alias = ""
	for _, s := range []*zoneRR{a, aaaa, srv} {
		if hasAny(s.variants) {
			n.sets[s.qtype] = s
		}
	}
	txt := []string{"service=" + name, "policy=" + policy}
	if route != nil {
		txt = append(txt, "route-revision="+strconv.FormatInt(route.Revision, 10))
		if route.FailOpen {
			txt = append(txt, "fail-open")
		}
	} else {
		txt = append(txt, "no-route")
	}
	txt = append(txt, b.txt...)
	n.sets[dns.TypeTXT] = &zoneRR{qtype: dns.TypeTXT, variants: [][]dns.RR{{&dns.TXT{Hdr: b.hdr(owner, dns.TypeTXT), Txt: txt}}}}
}

func hasAny(vs [][]dns.RR) bool {
	for _, v := range vs {
		if len(v) > 0 {
			return true
		}
	}
	return false
}

// rotations returns the orderings of ts to serve and a schedule of slots
// over them in proportion to the targets' weights (smooth weighted round
// robin): the target chosen for a slot leads that slot's ordering.
func rotations(ts []hostTarget) ([][]hostTarget, []uint8) {
	n := len(ts)
	if n <= 1 {
		return [][]hostTarget{ts}, nil
	}
	w := make([]int, n)
	total, equal := 0, true
	for i, t := range ts {
		w[i] = t.Weight
		if w[i] <= 0 {
			w[i] = 1
		}
		total += w[i]
		if w[i] != w[0] {
			equal = false
		}
	}
	slots := total
	if equal {
		slots = n
	}
	if slots > maxRotations {
		slots = maxRotations
	}
	cur := make([]int, n)
	leadIdx := map[int]uint8{}
	var orders [][]hostTarget
	sched := make([]uint8, 0, slots)
	for s := 0; s < slots; s++ {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		v, ok := leadIdx[best]
		if !ok {
			ord := make([]hostTarget, 0, n)
			ord = append(ord, ts[best:]...)
			ord = append(ord, ts[:best]...)
			orders = append(orders, ord)
			v = uint8(len(orders) - 1)
			leadIdx[best] = v
		}
		sched = append(sched, v)
	}
	return orders, sched
}

// compile packs every answer into templates.
func (b *builder) compile() (*tables, error) {
	tb := &tables{
		zone:       b.zone,
		names:      make(map[string]*node, len(b.names)),
		answers:    make(map[string]*rrset, 4*len(b.names)),
		sites:      b.sites,
		revision:   b.rt.Revision,
		stale:      b.rt.Stale,
		staleSince: b.rt.StaleSince,
		built:      time.Now(),
	}
	zw, err := wireName(b.zone)
	if err != nil {
		return nil, err
	}
	tb.zoneWire = zw
	for i, site := range b.sites {
		s := b.t.Site(site)
		if s == nil {
			continue
		}
		for _, c := range s.Subnets {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				continue
			}
			tb.prefixes = append(tb.prefixes, sitePrefix{p: p.Masked(), site: uint8(i)})
		}
	}
	sort.SliceStable(tb.prefixes, func(i, j int) bool { return tb.prefixes[i].p.Bits() > tb.prefixes[j].p.Bits() })

	soaTTL := b.ttl
	soaNeg := *b.soa
	soaNeg.Hdr.Ttl = min(soaTTL, b.soa.Minttl)
	nxBuf := make([]byte, 512)
	off, err := dns.PackRR(&soaNeg, nxBuf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack soa: %w", err)
	}
	tb.nx = &tmpl{rcode: dns.RcodeNameError, ns: 1, rest: nxBuf[:off:off], cut: off}
	// NODATA shares the same uncompressed SOA: one template for every name.
	b.nodata = &tmpl{rcode: dns.RcodeSuccess, ns: 1, rest: tb.nx.rest, cut: off}

	tb.axfr = append(tb.axfr, b.soa)
	sort.Strings(b.order)
	for _, name := range b.order {
		zn := b.names[name]
		nd := &node{}
		key, err := wireName(name)
		if err != nil {
			return nil, err
		}
		add := func(rs *rrset) {
			tb.answers[string(key)+string([]byte{byte(rs.qtype >> 8), byte(rs.qtype)})] = rs
		}
		if zn.alias != "" {
			cn := &dns.CNAME{Hdr: b.hdr(name, dns.TypeCNAME), Target: zn.alias}
			tb.axfr = append(tb.axfr, cn)
			target := b.names[zn.alias]
			// For each type the target has in the zone, chase the CNAME.
			if target != nil && target.alias == "" {
				for _, qt := range sortedTypes(target.sets) {
					rs, err := b.compileSet(name, qt, target.sets[qt], []dns.RR{cn})
					if err != nil {
						return nil, err
					}
					add(rs)
				}
			}
			only := &zoneRR{qtype: dns.TypeCNAME, variants: [][]dns.RR{nil}}
			rs, err := b.compileSet(name, dns.TypeCNAME, only, []dns.RR{cn})
			if err != nil {
				return nil, err
			}
			nd.cname = rs
			add(rs)
		} else {
			for _, qt := range sortedTypes(zn.sets) {
				zs := zn.sets[qt]
				if name == b.zone && qt == dns.TypeSOA {
					// SOA already leads the transfer.
				} else if len(zs.variants) > 0 {
					tb.axfr = append(tb.axfr, zs.variants[0]...)
				}
				rs, err := b.compileSet(name, qt, zs, nil)
				if err != nil {
					return nil, err
				}
				add(rs)
			}
			hinfo := &dns.HINFO{Hdr: b.hdr(name, dns.TypeHINFO), Cpu: "RFC8482", Os: ""}
			anyRR, err := b.pack(name, dns.TypeANY, []dns.RR{hinfo}, nil, nil, 0)
			if err != nil {
				return nil, err
			}
			add(&rrset{qtype: dns.TypeANY, variants: []tmpl{*anyRR}})
		}
		nd.nodata = b.nodata
		tb.names[string(key)] = nd
	}
	return tb, nil
}

func sortedTypes(m map[uint16]*zoneRR) []uint16 {
	out := make([]uint16, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// compileSet packs every variant of zs for owner name; prefix records (a
// CNAME) lead the answer section. A variant with no records becomes NODATA.
func (b *builder) compileSet(name string, qt uint16, zs *zoneRR, prefix []dns.RR) (*rrset, error) {
	rs := &rrset{qtype: qt, sel: zs.sel, bySite: zs.bySite}
	rs.nsched = uint8(copy(rs.schedule[:], zs.schedule))
	var ts []*tmpl
	for i, v := range zs.variants {
		ans := append(append([]dns.RR{}, prefix...), v...)
		if len(ans) == 0 {
			ts = append(ts, b.nodata) // no target in this variant: NODATA
			continue
		}
		var extra []dns.RR
		if i < len(zs.extra) {
			extra = zs.extra[i]
		}
		t, err := b.pack(name, qt, ans, nil, extra, 0)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		rs.sel = selOne
		t, err := b.pack(name, qt, prefix, nil, nil, 0)
		if err != nil {
			return nil, err
		}
		ts = []*tmpl{t}
	}
	if rs.sel == selRotate && rs.nsched == 0 {
		rs.sel = selOne
	}
	// One allocation for every variant's bytes.
	total := 0
	for _, t := range ts {
		total += len(t.rest)
	}
	arena := make([]byte, 0, total)
	rs.variants = make([]tmpl, len(ts))
	for i, t := range ts {
		start := len(arena)
		arena = append(arena, t.rest...)
		rs.variants[i] = *t
		rs.variants[i].rest = arena[start:len(arena):len(arena)]
	}
	return rs, nil
}

// pack builds a template by packing a full message with compression and
// keeping what follows the question.
func (b *builder) pack(name string, qt uint16, ans, ns, extra []dns.RR, rcode int) (*tmpl, error) {
	m := new(dns.Msg)
	m.Compress = true
	m.Question = []dns.Question{{Name: name, Qtype: qt, Qclass: dns.ClassINET}}
	m.Answer, m.Ns = ans, ns
	head, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack %s %s: %w", name, dns.TypeToString[qt], err)
	}
	full := head
	if len(extra) > 0 {
		m.Extra = extra
		if full, err = m.Pack(); err != nil {
			return nil, fmt.Errorf("pack %s %s: %w", name, dns.TypeToString[qt], err)
		}
	}
	wn, err := wireName(name)
	if err != nil {
		return nil, err
	}
	start := 12 + len(wn) + 4
	rest := make([]byte, len(full)-start)
	copy(rest, full[start:])
	return &tmpl{
		rcode: byte(rcode),
		an:    uint16(len(ans)),
		ns:    uint16(len(ns)),
		ar:    uint16(len(extra)),
		rest:  rest,
		cut:   len(head) - start,
	}, nil
}

// wireName is the lowercase wire encoding of a FQDN.
func wireName(name string) ([]byte, error) {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack name %q: %w", name, err)
	}
	return buf[:off], nil
}

// splitHostPortLoose splits host:port, accepting a bare host too.
func splitHostPortLoose(s string) (string, string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), strconv.Itoa(int(ap.Port())), nil
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s[:i], ":") {
		return s[:i], s[i+1:], nil
	}
	return s, "", nil
}
