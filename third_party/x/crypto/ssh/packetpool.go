// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import "sync"

// pooledPacketSize is the size of a full channel data packet: the largest
// payload a channel accepts (channelMaxPacket) plus the 9-byte header of
// msgChannelData. Any full packet is over the runtime's largest size class
// (32k), so allocating one per packet made every packet of channel data a
// large-object allocation and fed the garbage collector at the rate of the
// connection's throughput.
const pooledPacketSize = channelMaxPacket + 9

// packetPool recycles the buffers of channel data packets. A buffer goes
// back once the channel's reader has consumed all of its data.
var packetPool = sync.Pool{
	New: func() any {
		b := make([]byte, pooledPacketSize)
		return &b
	},
}

// newPacket returns a buffer of length n for a decrypted packet whose
// message type is typ. Only channel data packets of more than a few bytes
// come from the pool: they are the ones handleData hands to a buffer that
// releases them.
func newPacket(n int, typ byte) []byte {
	if typ != msgChannelData || n < 1024 || n > pooledPacketSize {
		return make([]byte, n)
	}
	return (*packetPool.Get().(*[]byte))[:n]
}

// isPooledPacket reports whether packet may have come from newPacket.
func isPooledPacket(packet []byte) bool {
	return cap(packet) == pooledPacketSize
}

// releasePacket returns a packet buffer to the pool. Nothing may use the
// packet afterwards.
func releasePacket(packet []byte) {
	packet = packet[:cap(packet)]
	packetPool.Put(&packet)
}
