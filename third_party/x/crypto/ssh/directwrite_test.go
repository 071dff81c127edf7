// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build unix

package ssh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"sync"
	"testing"
)

// directPair connects a client and a server over TCP on loopback, with the
// client rekeying every rekey bytes (0: the default), and returns the
// server's end of a channel the client opened and the client's end.
func directPair(t *testing.T, rekey uint64) (server, client Channel) {
	t.Helper()
	c1, c2, err := netPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	serverConf := &ServerConfig{NoClientAuth: true}
	serverConf.AddHostKey(testSigners["ecdsa"])
	clientConf := &ClientConfig{HostKeyCallback: InsecureIgnoreHostKey(), User: "u"}
	clientConf.RekeyThreshold = rekey

	type accepted struct {
		ch  Channel
		err error
	}
	got := make(chan accepted, 1)
	go func() {
		conn, chans, reqs, err := NewServerConn(c1, serverConf)
		if err != nil {
			got <- accepted{err: err}
			return
		}
		t.Cleanup(func() { conn.Close() })
		go DiscardRequests(reqs)
		newCh, ok := <-chans
		if !ok {
			got <- accepted{err: errors.New("no channel")}
			return
		}
		ch, chReqs, err := newCh.Accept()
		if err == nil {
			go DiscardRequests(chReqs)
		}
		got <- accepted{ch, err}
	}()
	conn, chans, reqs, err := NewClientConn(c2, "", clientConf)
	if err != nil {
		t.Fatal(err)
	}
	cl := NewClient(conn, chans, reqs)
	t.Cleanup(func() { cl.Close() })
	cch, cReqs, err := cl.OpenChannel("direct-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	go DiscardRequests(cReqs)
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.ch, cch
}

// TestWriteToDirectOrder copies a channel to a TCP connection whose
// reader is slow and whose buffers are small, so that direct writes from
// the read loop are cut short and the rest is left to WriteTo, over and
// over, while the client rekeys every 64k: every byte must arrive, in
// order.
func TestWriteToDirectOrder(t *testing.T) {
	for _, rekey := range []uint64{0, 64 << 10} {
		srvCh, cliCh := directPair(t, rekey)
		out, in, err := netPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		defer in.Close()
		out.(*net.TCPConn).SetWriteBuffer(128 << 10)
		in.(*net.TCPConn).SetReadBuffer(128 << 10)

		data := make([]byte, 8<<20)
		rand.New(rand.NewSource(int64(rekey))).Read(data)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(1))
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+rnd.Intn(200<<10))
				if _, err := cliCh.Write(rest[:n]); err != nil {
					t.Error(err)
					return
				}
				rest = rest[n:]
			}
			cliCh.CloseWrite()
		}()
		var copied int64
		var copyErr error
		go func() {
			defer wg.Done()
			copied, copyErr = io.Copy(out, srvCh)
			out.(*net.TCPConn).CloseWrite()
		}()
		var got bytes.Buffer
		buf := make([]byte, 1000)
		for {
			n, err := in.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if copyErr != nil || copied != int64(len(data)) {
			t.Errorf("rekey %d: WriteTo copied %d bytes, err %v; want %d", rekey, copied, copyErr, len(data))
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("rekey %d: received %d bytes, want %d, not the same", rekey, got.Len(), len(data))
		}
	}
}

// TestWriteToDirectWriterFails has the local side go away mid-stream:
// WriteTo must return the error, and must not return success.
func TestWriteToDirectWriterFails(t *testing.T) {
	srvCh, cliCh := directPair(t, 0)
	out, in, err := netPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	go func() {
		chunk := make([]byte, 32<<10)
		for {
			if _, err := cliCh.Write(chunk); err != nil {
				return
			}
		}
	}()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := io.Copy(out, srvCh)
		done <- result{n, err}
	}()
	// Read a little, then reset the connection.
	if _, err := io.ReadFull(in, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	in.(*net.TCPConn).SetLinger(0)
	in.Close()
	if r := <-done; r.err == nil {
		t.Fatalf("WriteTo returned no error after %d bytes to a reset connection", r.n)
	}
	cliCh.Close()
}

// TestTryWritePacketDuringKex: while a key exchange is in progress and the
// queue of packets waiting for it is full, tryWritePacket must neither
// wait nor build the packet, where writePacket would wait.
func TestTryWritePacketDuringKex(t *testing.T) {
	tr := &handshakeTransport{}
	tr.writeCond = sync.NewCond(&tr.mu)
	tr.sentInitMsg = &kexInitMsg{}
	tr.pendingPackets = make([][]byte, maxPendingPackets)
	built := false
	ok, err := tr.tryWritePacket(func() []byte { built = true; return []byte{msgChannelWindowAdjust} })
	if ok || err != nil || built {
		t.Errorf("tryWritePacket with a full queue during kex = %v, %v (built: %v); want false, nil, not built", ok, err, built)
	}
	// With room in the queue, the packet is queued.
	tr.pendingPackets = tr.pendingPackets[:1]
	ok, err = tr.tryWritePacket(func() []byte { return []byte{msgChannelWindowAdjust} })
	if !ok || err != nil || len(tr.pendingPackets) != 2 {
		t.Errorf("tryWritePacket with room during kex = %v, %v, %d queued; want true, nil, 2", ok, err, len(tr.pendingPackets))
	}
	// Another writer holding the lock: no waiting either.
	tr.mu.Lock()
	ok, _ = tr.tryWritePacket(func() []byte { return []byte{msgChannelWindowAdjust} })
	tr.mu.Unlock()
	if ok {
		t.Error("tryWritePacket waited for, or took, a lock another writer held")
	}
}

// FuzzHandleDataInline feeds arbitrary channel data packets to the read
// loop's handler. It must not panic, and a packet it leaves to the mux
// (reports false) must have changed nothing: the mux then handles it, and
// its error ends the connection as before. A packet it takes must be
// exactly what the mux would accept, with the data queued for the reader.
func FuzzHandleDataInline(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 4, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 'x'})
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		// One mux: the packet goes to the channel it opened.
		reader, ch, _ := channelPair(t)
		defer reader.Close()
		defer ch.Close()
		packet := append([]byte{msgChannelData}, body...)
		if len(packet) >= 5 {
			// Address the reader's end, whatever the fuzzer chose,
			// half of the time.
			if len(body) > 0 && body[0]&1 == 0 {
				binary.BigEndian.PutUint32(packet[1:], reader.localId)
			}
		}
		reader.windowMu.Lock()
		before := reader.myWindow
		reader.windowMu.Unlock()
		handled := reader.mux.handleDataInline(packet)
		reader.windowMu.Lock()
		after := reader.myWindow
		reader.windowMu.Unlock()
		if !handled {
			if after != before {
				t.Errorf("refused packet changed the window %d -> %d", before, after)
			}
			return
		}
		if len(packet) < 9 {
			t.Fatalf("took a packet of %d bytes, shorter than a data header", len(packet))
		}
		n := binary.BigEndian.Uint32(packet[5:9])
		if n == 0 {
			// Ignored, as the mux ignores it.
			if after != before {
				t.Errorf("empty data packet changed the window %d -> %d", before, after)
			}
			return
		}
		if int(n) != len(packet)-9 || before-after != n {
			t.Errorf("took a packet declaring %d bytes with %d, window %d -> %d", n, len(packet)-9, before, after)
		}
	})
}
