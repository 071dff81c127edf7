package tunnel

import (
	"bytes"
	"encoding/binary"
	"github.com/turku-backup/turku-storage/internal/testlog"
	"io"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// chunkEcho reads a 4-byte chunk size and then everything up to EOF, and
// sends the rest back in writes of that size: channel data packets of
// every size up to the channel's maximum, and several per write above it.
func chunkEcho(ch gossh.Channel) {
	got, err := io.ReadAll(ch)
	if err != nil || len(got) < 4 {
		return
	}
	size := int(binary.BigEndian.Uint32(got))
	for data := got[4:]; len(data) > 0; {
		n := min(size, len(data))
		if _, err := ch.Write(data[:n]); err != nil {
			return
		}
		data = data[n:]
	}
	ch.CloseWrite()
	io.Copy(io.Discard, ch)
}

// FuzzCarry sends data through a checkin endpoint to an agent that
// returns it in chunks of a given size: what comes back must be the data,
// byte for byte. The agent's data reaches the local connection straight
// from the SSH layer's recycled packet buffers (third_party/x/crypto), so
// a buffer reused too early shows here as corrupted or lost bytes.
func FuzzCarry(f *testing.F) {
	f.Add([]byte("@RSYNCD: 32.0 sha512 sha256\n"), uint32(7))
	f.Add(bytes.Repeat([]byte{0xa5}, 1<<20), uint32(1<<17))
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 20000), uint32(40000))
	f.Add(bytes.Repeat([]byte("x"), 300000), uint32(1<<18))
	f.Add([]byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint32) {
		size := 1 + int(chunk%(1<<19))
		a := newAgent(t, chunkEcho)
		ep, err := Checkin(t.Context(), a.server, "localhost", 51234, testlog.New(t), ownProcess())
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		msg := binary.BigEndian.AppendUint32(nil, uint32(size))
		got, _ := roundTrip(t, ep.Addr(), append(msg, data...))
		if !bytes.Equal(got, data) {
			t.Errorf("got %d bytes back, want %d (chunks of %d); first difference at %d",
				len(got), len(data), size, firstDiff(got, data))
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
