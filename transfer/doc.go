// Package transfer moves a machine's whole history from one storage unit
// to another: Send writes every source's snapshots, their .json files,
// latest links and the hard links between snapshots as one checksummed
// stream, and Receive unpacks such a stream onto a volume of this unit,
// placed and linked as a first backup would be, only once the stream has
// verified. The stream format is in docs/operations.md ("Moving a machine
// to another unit"); cmd's send and receive wire it to files and pipes.
package transfer
