package backup

// TransferStats are one rsync run's figures, from its --stats output.
// A zero field means rsync did not say (an older rsync, or a run that
// failed before its summary).
type TransferStats struct {
	// Files is the number of files (of every type) in the source.
	Files int64 `json:"files"`
	// NewFiles is the number of files created in the snapshot, not
	// linked from its base.
	NewFiles int64 `json:"new_files"`
	// FilesTransferred is the number of regular files whose data was sent.
	FilesTransferred int64 `json:"files_transferred"`
	// TotalSize is the size of every file in the source, in bytes.
	TotalSize int64 `json:"total_size"`
	// TransferredSize is the size of the files whose data was sent: the
	// data a link-dest snapshot adds to the volume.
	TransferredSize int64 `json:"transferred_size"`
	// BytesReceived is what came over the wire (compressed, with protocol
	// overhead).
	BytesReceived int64 `json:"bytes_received"`
}
