//go:build bench

package main

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procs tracks every long-lived process turkubench starts, so that exit
// (normal, error or signal) stops them all. Their pids also go to a file
// the shell wrapper's trap reads, in case turkubench itself is killed.
type procs struct {
	pidFile string

	mu   sync.Mutex // guards live
	live map[*exec.Cmd]chan struct{}
}

func newProcs(pidFile string) *procs {
	return &procs{pidFile: pidFile, live: map[*exec.Cmd]chan struct{}{}}
}

// start starts cmd and tracks it until it exits; done is closed then.
func (p *procs) start(cmd *exec.Cmd) (done <-chan struct{}, err error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan struct{})
	p.mu.Lock()
	p.live[cmd] = ch
	p.writePIDsLocked()
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		delete(p.live, cmd)
		p.writePIDsLocked()
		p.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

func (p *procs) writePIDsLocked() {
	if p.pidFile == "" {
		return
	}
	f, err := os.Create(p.pidFile + ".tmp")
	if err != nil {
		return
	}
	for c := range p.live {
		fmt.Fprintln(f, c.Process.Pid)
	}
	f.Close()
	_ = os.Rename(p.pidFile+".tmp", p.pidFile)
}

// stop sends SIGTERM to cmd and waits up to grace, then SIGKILL.
func (p *procs) stop(cmd *exec.Cmd, grace time.Duration) {
	p.mu.Lock()
	ch, ok := p.live[cmd]
	p.mu.Unlock()
	if !ok {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-ch
	}
}

// stopAll stops every tracked process.
func (p *procs) stopAll() {
	p.mu.Lock()
	var cmds []*exec.Cmd
	for c := range p.live {
		cmds = append(cmds, c)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(c, 5*time.Second)
		}()
	}
	wg.Wait()
}
