package backup

// Observer is told which sources wait for a backup slot and which run,
// for live status; cmd hands it serve's control registry.
type Observer interface {
	// BackupWaiting is called when a source must wait for one of the
	// MaxConcurrent slots; done is called when it stops waiting.
	BackupWaiting(SourceInfo) (done func())
	// BackupRunning is called when a source's rsync starts; done is
	// called when it has ended.
	BackupRunning(SourceInfo) (done func())
}

// SourceInfo describes one source's backup.
type SourceInfo struct {
	Machine string
	Unit    string
	Source  string
	// Received counts the bytes that came from the agent through the
	// tunnel since rsync started; nil when the request had no counter.
	Received func() int64
	// Files counts the files rsync --verbose listed so far.
	Files func() int64
}

// observe calls o's method f, or returns a no-op without an Observer.
func observe(o Observer, f func(Observer, SourceInfo) func(), info SourceInfo) func() {
	if o == nil {
		return func() {}
	}
	return f(o, info)
}
