//go:build linux

package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBufSize is the receive buffer per datagram and the response buffer
// per datagram (responses are bounded by udpPayload anyway).
const udpBufSize = 4096

// omitPMTU stops the kernel from using path MTU information for answers
// (IP_PMTUDISC_OMIT, as Knot and BIND do): forged ICMP "fragmentation
// needed" messages then cannot make the server fragment its answers, which
// would open them to fragment-injection attacks.
func omitPMTU(fd int, network string) error {
	if network == "udp6" {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_OMIT)
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_OMIT)
}

// batch moves datagrams with recvmmsg/sendmmsg on one socket. All memory is
// allocated once; reading and writing allocate nothing.
type batch struct {
	rc     syscall.RawConn
	in     []unix.Mmsghdr
	inIov  []unix.Iovec
	names  []unix.RawSockaddrInet6
	inBuf  [][]byte
	out    []unix.Mmsghdr
	outIov []unix.Iovec
	outBuf [][]byte

	n, sent, toSend int
	errno           syscall.Errno
	readFn, writeFn func(fd uintptr) bool
}

func newBatch(c *net.UDPConn, size int) (*batch, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batch{
		rc:     rc,
		in:     make([]unix.Mmsghdr, size),
		inIov:  make([]unix.Iovec, size),
		names:  make([]unix.RawSockaddrInet6, size),
		inBuf:  make([][]byte, size),
		out:    make([]unix.Mmsghdr, size),
		outIov: make([]unix.Iovec, size),
		outBuf: make([][]byte, size),
	}
	for i := 0; i < size; i++ {
		b.inBuf[i] = make([]byte, udpBufSize)
		b.outBuf[i] = make([]byte, udpBufSize)
		b.inIov[i].Base = &b.inBuf[i][0]
		b.inIov[i].SetLen(udpBufSize)
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.SetIovlen(1)
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.outIov[i].Base = &b.outBuf[i][0]
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
	}
	b.readFn = b.doRead
	b.writeFn = b.doWrite
	return b, nil
}

func (b *batch) doRead(fd uintptr) bool {
	for i := range b.in {
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].Hdr.Flags = 0
		b.in[i].Len = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), uintptr(len(b.in)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.n, b.errno = int(n), e
	return true
}

func (b *batch) doWrite(fd uintptr) bool {
	for b.sent < b.toSend {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.toSend-b.sent), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.sent += int(n)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			// A datagram the kernel refuses (e.g. unreachable): skip it.
			b.sent++
		}
	}
	return true
}

// recv blocks until at least one datagram arrives and returns how many.
func (b *batch) recv() (int, error) {
	b.n, b.errno = 0, 0
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// send writes the first count prepared responses.
func (b *batch) send(count int) error {
	b.sent, b.toSend = 0, count
	if count == 0 {
		return nil
	}
	return b.rc.Write(b.writeFn)
}

// sockaddr returns the source address of datagram i.
func (b *batch) sockaddr(i int) netip.Addr {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr)
	}
	return netip.Addr{}
}

// serveUDP is one worker: receive a batch, answer each datagram into its
// own output slot, send the batch.
func (s *Server) serveUDP(c *net.UDPConn, st *workerStats) {
	b, err := newBatch(c, s.cfg.Batch)
	if err != nil {
		s.log.Error("dns: udp socket", "err", err)
		return
	}
	w := &worker{stats: st}
	for {
		n, err := b.recv()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.ENOBUFS) {
				continue
			}
			select {
			case <-s.done:
				return
			default:
			}
			continue
		}
		var now uint32
		if s.rrl != nil {
			now = uint32(time.Now().Unix())
		}
		tb := s.tables.Load()
		m := 0
		for i := 0; i < n; i++ {
			q := b.inBuf[i][:b.in[i].Len]
			if b.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			client := b.sockaddr(i)
			out := b.outBuf[m]
			olen, slow := w.respond(tb, q, out, client, false)
			if slow {
				olen = 0
				if m := s.slowUDP(q, client); len(m) <= len(out) {
					olen = copy(out, m)
				}
			}
			if olen == 0 {
				continue
			}
			if s.rrl != nil {
				switch s.rrl.check(client, now) {
				case rrlDrop:
					st.rrlDrop.Add(1)
					continue
				case rrlSlip:
					st.rrlSlip.Add(1)
					olen = w.slip(out, olen)
				}
			}
			b.out[m].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
			b.out[m].Hdr.Namelen = b.in[i].Hdr.Namelen
			b.outIov[m].SetLen(olen)
			m++
		}
		if err := b.send(m); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
