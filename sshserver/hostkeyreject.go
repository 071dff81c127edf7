package sshserver

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"
)

// Message numbers of the cleartext key exchange (RFC 4253 §12, RFC 5656
// §7.1, RFC 4419 §5).
const (
	msgNewKeys     = 21
	msgKexECDHInit = 30 // also SSH_MSG_KEXDH_INIT
	msgKexECDHRepl = 31 // also SSH_MSG_KEXDH_REPLY; SSH_MSG_KEX_DH_GEX_GROUP in group exchange
	msgKexGexInit  = 32
	msgKexGexReply = 33
)

// kexWatch follows the cleartext start of a connection (version lines and
// unencrypted packets, RFC 4253 §4.2 and §6) in both directions, to tell
// one failure apart: OpenSSH's ssh, when the host key the server presents
// is not the one in its known_hosts ("Host key verification failed"),
// closes the connection right after the server's key exchange reply,
// without a word on the wire. From the server that looks like any dropped
// connection; it is the one that needs an operator (agents were handed
// host keys this server does not serve), so it is logged at WARN.
// ssh-keyscan does the same on purpose and names itself in its version
// string ("SSH-2.0-OpenSSH-keyscan"), so it is left out.
//
// Only the handshake passes through it: conn calls it until the agent is
// authenticated, and each direction stops parsing at its NEWKEYS, after
// which the bytes are encrypted.
type kexWatch struct {
	mu     sync.Mutex // guards everything below: reads and writes run on different goroutines
	in     kexScanner // from the client
	out    kexScanner // from us
	warned bool
}

// kexScanner follows one direction: the version line, then the message
// number of each packet, and the host key blob of our key exchange reply.
type kexScanner struct {
	stopped bool // NEWKEYS passed, or the bytes made no sense
	line    []byte
	version string
	// hdr collects a packet's length, padding length and message number;
	// skip is what remains of the packet after them.
	hdr  [6]byte
	nhdr int
	skip int
	// keep, when > 0, is how many more bytes of the current packet to
	// copy into body (the start of a key exchange reply).
	keep int
	body []byte
	seen [64]bool
	// reply is the start of our last key exchange reply.
	reply []byte
}

// maxVersionLine is RFC 4253 §4.2's limit, CR LF included.
const maxVersionLine = 255

// maxHandshakePacket bounds the packets followed; x/crypto itself refuses
// larger ones (RFC 4253 §6.1 asks for at least 35000).
const maxHandshakePacket = 256 << 10

// replyPrefix is how much of a key exchange reply is kept: the host key
// blob comes first and is at most a few KiB (RSA 16384 bits).
const replyPrefix = 4 << 10

func (s *kexScanner) feed(p []byte, isReply func(msg byte) bool) {
	for len(p) > 0 && !s.stopped {
		if s.version == "" {
			i := 0
			for i < len(p) && p[i] != '\n' {
				i++
			}
			if len(s.line)+i > maxVersionLine {
				s.stopped = true
				return
			}
			s.line = append(s.line, p[:i]...)
			if i == len(p) {
				return
			}
			p = p[i+1:]
			// Lines before the version line are allowed (from the server).
			if l := strings.TrimRight(string(s.line), "\r"); strings.HasPrefix(l, "SSH-") {
				s.version = l
			}
			s.line = s.line[:0]
			continue
		}
		if s.skip > 0 {
			n := min(s.skip, len(p))
			if s.keep > 0 {
				k := min(s.keep, n)
				s.body = append(s.body, p[:k]...)
				s.keep -= k
			}
			s.skip -= n
			p = p[n:]
			if s.skip == 0 && s.body != nil {
				s.reply, s.body, s.keep = s.body, nil, 0
			}
			continue
		}
		n := copy(s.hdr[s.nhdr:], p)
		s.nhdr += n
		p = p[n:]
		if s.nhdr < len(s.hdr) {
			return
		}
		s.nhdr = 0
		length := int(binary.BigEndian.Uint32(s.hdr[:4]))
		if length < 2 || length > maxHandshakePacket {
			s.stopped = true
			return
		}
		msg := s.hdr[5]
		if msg < byte(len(s.seen)) {
			s.seen[msg] = true
		}
		if msg == msgNewKeys {
			s.stopped = true
			return
		}
		s.skip = length - 2
		if isReply != nil && isReply(msg) && s.skip > 0 {
			s.body = make([]byte, 0, min(s.skip, replyPrefix))
			s.keep = min(s.skip, replyPrefix)
		}
	}
}

// wrote follows what the server sent.
func (w *kexWatch) wrote(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.feed(p, func(msg byte) bool {
		// In group exchange, 31 is the group and 33 the reply; the
		// client sent 30 before an ECDH/DH reply and 32 before a
		// group-exchange one.
		return (msg == msgKexECDHRepl && w.in.seen[msgKexECDHInit]) || (msg == msgKexGexReply && w.in.seen[msgKexGexInit])
	})
}

// read follows what the client sent and, when the read failed, decides
// whether the client walked away from our host key.
func (w *kexWatch) read(p []byte, err error, log *slog.Logger) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.in.feed(p, nil)
	w.failed(err, log)
}

// writeFailed decides the same when a write failed: a client that closed
// while our NEWKEYS was on its way can make the write fail (EPIPE, reset)
// before any read does, and the transport then closes the connection
// itself.
func (w *kexWatch) writeFailed(err error, log *slog.Logger) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed(err, log)
}

func (w *kexWatch) failed(err error, log *slog.Logger) {
	if err == nil || w.warned || !w.rejectedHostKey(err) {
		return
	}
	w.warned = true
	args := []any{"client", strings.TrimPrefix(w.in.version, "SSH-2.0-")}
	if k, ok := w.hostKey(); ok {
		args = append(args, "host_key", k.Type()+" "+gossh.FingerprintSHA256(k))
	}
	log.Warn("client closed the connection after receiving our host key: its known_hosts holds another key for this server (check the host keys advertised to turku-api)", args...)
}

// rejectedHostKey reports whether the connection ended the way OpenSSH's
// ssh ends it on a host key it does not trust: our key exchange reply (with
// the host key) was sent, the client never sent NEWKEYS, and then it went
// away (EOF, or a reset because our NEWKEYS was still unread).
func (w *kexWatch) rejectedHostKey(err error) bool {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return false // we closed it, or the login grace time did
	}
	if w.out.reply == nil || w.in.seen[msgNewKeys] {
		return false
	}
	return !strings.Contains(w.in.version, "keyscan")
}

// hostKey parses the host key from our key exchange reply: its first field
// is the host key blob (RFC 5656 §4, RFC 4253 §8, RFC 4419 §3).
func (w *kexWatch) hostKey() (gossh.PublicKey, bool) {
	r := w.out.reply
	if len(r) < 4 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(r))
	if n > len(r)-4 {
		return nil, false
	}
	k, err := gossh.ParsePublicKey(r[4 : 4+n])
	return k, err == nil
}
