package sshserver

import (
	"crypto/rand"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// benchPayload is what each benchmark iteration pushes through the cipher,
// about one small source's worth of rsync traffic.
const benchPayload = 64 << 20

// benchmarkCipher measures bulk throughput of one SSH cipher between an
// in-process x/crypto client and server over loopback TCP, the server
// copying the channel into another loopback socket: the shape of an rsync
// pull through the agent's reverse tunnel. The figures and the
// choice they led to are in algorithms.go.
func benchmarkCipher(b *testing.B, cipher string) {
	signer := agenttest.NewSigner(b)
	scfg := &gossh.ServerConfig{NoClientAuth: true}
	scfg.Ciphers = []string{cipher}
	scfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sc, chans, reqs, err := gossh.NewServerConn(c, scfg)
		if err != nil {
			c.Close()
			return
		}
		defer sc.Close()
		go gossh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go gossh.DiscardRequests(creqs)
			go func() {
				defer ch.Close()
				// As the tunnel does: the channel into a local
				// socket (rsync's), drained on its other end.
				out, in, err := socketPair()
				if err != nil {
					b.Error(err)
					io.Copy(io.Discard, ch)
					return
				}
				defer in.Close()
				go io.Copy(io.Discard, in)
				io.Copy(out, ch)
				out.Close()
			}()
		}
	}()

	client, err := gossh.Dial("tcp", ln.Addr().String(), &gossh.ClientConfig{
		User:            "bench",
		HostKeyCallback: gossh.FixedHostKey(signer.PublicKey()),
		Config:          gossh.Config{Ciphers: []string{cipher}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	buf := make([]byte, 256<<10)
	rand.Read(buf)
	b.SetBytes(benchPayload)
	// Wall time suffers when other work shares the CPUs; the CPU time both
	// ends spend per MiB does much less, so report it too.
	cpu0 := cpuTime(b)
	iters := 0
	b.ResetTimer()
	for b.Loop() {
		iters++
		ch, reqs, err := client.OpenChannel("bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		go gossh.DiscardRequests(reqs)
		for sent := 0; sent < benchPayload; sent += len(buf) {
			if _, err := ch.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		ch.CloseWrite()
		io.Copy(io.Discard, ch) // returns when the server has drained it all
		ch.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(iters*benchPayload>>20), "cpu-ns/MiB")
}

// cpuTime returns the user+system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkCipherAES128GCM(b *testing.B) { benchmarkCipher(b, gossh.CipherAES128GCM) }
func BenchmarkCipherAES256GCM(b *testing.B) { benchmarkCipher(b, gossh.CipherAES256GCM) }
func BenchmarkCipherChaCha20Poly1305(b *testing.B) {
	benchmarkCipher(b, gossh.CipherChaCha20Poly1305)
}
func BenchmarkCipherAES128CTR(b *testing.B) { benchmarkCipher(b, gossh.CipherAES128CTR) }
func BenchmarkCipherAES256CTR(b *testing.B) { benchmarkCipher(b, gossh.CipherAES256CTR) }
