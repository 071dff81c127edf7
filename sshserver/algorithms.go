package sshserver

import gossh "golang.org/x/crypto/ssh"

// Algorithms offered to agents. Key exchange: hybrid post-quantum first
// (OpenSSH >= 9.9), then curve25519 (OpenSSH >= 6.5), then NIST ECDH; no
// finite-field DH. Strict KEX (the Terrapin countermeasure,
// kex-strict-s-v00@openssh.com) is negotiated by x/crypto on its own;
// TestStrictKEXOffered checks that it stays so.
var kexAlgorithms = []string{
	gossh.KeyExchangeMLKEM768X25519,
	gossh.KeyExchangeCurve25519,
	gossh.KeyExchangeECDHP256,
	gossh.KeyExchangeECDHP384,
	gossh.KeyExchangeECDHP521,
}

// cipherAlgorithms: AES-GCM only. The server takes the first of the CLIENT's
// ciphers it also offers, and OpenSSH lists chacha20-poly1305, then aes-ctr,
// before aes-gcm: offering those would have every agent pick them. Measured
// with BenchmarkCipher* (64 MiB per op through one channel, x/crypto client
// and server in one process over loopback; CPU time of both ends per MiB,
// which, unlike MB/s, holds steady on a busy machine):
//
//	go test -run XXX -bench BenchmarkCipher -benchtime 5x -count 3 ./sshserver/
//	(2 vCPU AMD EPYC "Turin", AES-NI, Go 1.26, x/crypto v0.59.0)
//
//	CPU per MiB, both ends            load avg ~4.5   load avg ~8
//	aes128-gcm@openssh.com            4.0-4.4 ms      4.9-5.0 ms
//	aes256-gcm@openssh.com            4.0-4.3 ms      4.2-5.0 ms
//	aes128-ctr + hmac-sha2-256-etm    5.1-5.4 ms      5.0-5.4 ms
//	aes256-ctr + hmac-sha2-256-etm    5.4-5.5 ms      5.9-7.2 ms
//	chacha20-poly1305@openssh.com     6.8-7.1 ms      7.0-7.9 ms
//
// (Wall-clock throughput at load avg ~4.5: AES-GCM 340-410 MB/s,
// AES-CTR 300-340 MB/s, ChaCha20-Poly1305 250-270 MB/s.)
//
// x/crypto's chacha20 has assembly for arm64, loong64, ppc64 and s390x but
// not amd64, so there it costs ~60-70% more CPU than AES-GCM with AES-NI.
// Every OpenSSH since 6.2 (2013) built with OpenSSL has AES-GCM;
// Options.Ciphers can widen the list for an odd client.
var cipherAlgorithms = []string{
	gossh.CipherAES128GCM,
	gossh.CipherAES256GCM,
}

// macAlgorithms only matter for non-AEAD ciphers added through
// Options.Ciphers: encrypt-then-MAC with SHA-2 only.
var macAlgorithms = []string{
	gossh.HMACSHA256ETM,
	gossh.HMACSHA512ETM,
}
