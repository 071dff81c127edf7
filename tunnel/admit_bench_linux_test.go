//go:build linux

package tunnel

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkRsyncAdmit is the admission check of a checkin endpoint for
// one rsync connection, made by a child process, with this process
// holding as many descriptors as serve does during a night (about 60).
// "children_first" is the check as it runs; "self_first_glob" looks the
// way it did before: through this process's own descriptors first, and
// the children lists found by a glob.
//
//	go test -run '^$' -bench BenchmarkRsyncAdmit -count 3 ./tunnel/
func BenchmarkRsyncAdmit(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The child holds the connecting socket until the far end closes it.
	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(port)+" && read -r _ <&3")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		server.Close()
		cmd.Wait()
	}()
	for range 60 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	b.Run("children_first", func(b *testing.B) {
		for b.Loop() {
			if err := newRsyncAdmitter().admit(server, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("self_first_glob", func(b *testing.B) {
		for b.Loop() {
			_, inode, err := peerSocket(server)
			if err != nil {
				b.Fatal(err)
			}
			self := os.Getpid()
			pid, err := socketHolder(inode, append([]int{self}, childrenGlob(self)...))
			if err != nil || pid != cmd.Process.Pid {
				b.Fatalf("holder %d, %v; want %d", pid, err, cmd.Process.Pid)
			}
			startTime(pid)
		}
	})
}

// childrenGlob is children as it was: the thread files found by a glob.
func childrenGlob(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
