//go:build bench

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// burstResult is (h)'s burst: k agents connecting at the same moment,
// each from its own address, with nothing due.
type burstResult struct {
	Agents int `json:"agents"`
	// By side, then "first_time" (serve just restarted, its known
	// sources forgotten: no address known to admission), "known" (the
	// same burst again right after) and, for serve, "after_restart" (the
	// burst again after a restart that kept its known sources).
	Sides map[string]map[string]*burstRun `json:"sides"`
}

type burstRun struct {
	OK      int      `json:"ok"`
	Refused int      `json:"refused_at_admission"`
	Other   int      `json:"other_failures"`
	Errors  []string `json:"errors,omitempty"` // the first 5
	// ServeLog holds serve's admission warnings logged during the round.
	ServeLog []string `json:"serve_log,omitempty"`
}

// burst restarts serve (admission forgets every address) and starts k of
// the night's agents at once, twice per side: a burst of first-time
// agents, then the same agents again.
func (b *bench) burst(ctx context.Context, agents []*machine, k int) (*burstResult, error) {
	k = min(k, len(agents))
	res := &burstResult{Agents: k, Sides: map[string]map[string]*burstRun{}}
	// serve keeps the addresses that logged in across a restart
	// (VAR_DIR/history/known-sources): forget them for this one, so
	// that the first round is first-time indeed.
	b.s.forgetSources = true
	err := b.s.restartServe(ctx, len(b.s.registered))
	b.s.forgetSources = false
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	for _, srv := range b.servers() {
		res.Sides[srv.name] = map[string]*burstRun{}
		rounds := []string{"first_time", "known"}
		if srv.name == "ours" {
			// And once more after a restart that keeps what it knew.
			rounds = append(rounds, "after_restart")
		}
		for _, round := range rounds {
			if round == "after_restart" {
				if err := b.s.restartServe(ctx, len(b.s.registered)); err != nil {
					return nil, err
				}
			}
			// Nothing due: a night's failure on the other side would
			// otherwise leave a source due here.
			for _, m := range agents[:k] {
				b.s.api.SetDue(m.uuid, nightSource, false)
			}
			r := &burstRun{}
			logSize := fileSize(b.s.serveLog)
			var mu sync.Mutex
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, m := range agents[:k] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					addr := nightAddr(i)
					port := 49152 + i
					_, stderr, err := b.s.runAgent(ctx, agentRun{
						serverPort: srv.port, m: m, fwdPort: port, fwdHost: addr,
						request: checkinRequest(port, map[string]any{}),
						extra:   []string{"-b", addr},
					}, 2*time.Minute)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && strings.Contains(stderr, "No sources to back up now"):
						r.OK++
					case strings.Contains(stderr, "kex_exchange_identification"):
						r.Refused++
					default:
						r.Other++
						if len(r.Errors) < 5 {
							r.Errors = append(r.Errors, fmt.Sprintf("%v: %s", err, failureLines(stderr)))
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if srv.name == "ours" {
				r.ServeLog = admissionLines(b.s.serveLog, logSize)
			}
			res.Sides[srv.name][round] = r
			b.logf("  burst of %d, %s, %s: %d ok, %d refused at admission, %d other failures; %s", k, round, srv.name, r.OK, r.Refused, r.Other, strings.Join(r.ServeLog, " | "))
		}
	}
	return res, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// admissionLines returns serve's log lines from offset on that tell of
// connections refused before the banner.
func admissionLines(path string, offset int64) []string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if strings.Contains(l, "unauthenticated connections") || strings.Contains(l, "penalised") || strings.Contains(l, "refus") {
			out = append(out, l)
		}
	}
	return out
}
