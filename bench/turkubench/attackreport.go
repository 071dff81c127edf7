//go:build bench

package main

import (
	"fmt"
	"strings"
)

// roundTwoReport renders the fill, the session-holding key and the slow
// coordinator clients of (g), side by side where OpenSSH has the part.
func roundTwoReport(m map[string]*attackResult) string {
	var b strings.Builder
	o, s := m["ours"], m["openssh"]
	row := attackRows(&b, m)
	fleet := func(ok, wall *stat) string {
		if ok == nil || len(ok.Runs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f of 50 in %.1f s", ok.Runs[0], wall.Runs[0])
	}

	if (o != nil && o.Fill != nil) || (s != nil && s.Fill != nil) {
		fmt.Fprintf(&b, "\n### (g) admission-table fill, then a stalling source (%s, %d connections) and an agent from a new address\n\n", stallSource, stallConns)
		fmt.Fprintf(&b, "| | ours | OpenSSH |\n|---|---|---|\n")
		fill := partRows(row, func(r *attackResult) *fillResult { return r.Fill })
		fill("fill: sources; answered with a version line; refused; failed", func(r *fillResult) string {
			stopped := ""
			if r.Stopped {
				stopped = " (deadline)"
			}
			return fmt.Sprintf("%d%s; %d; %d; %d", r.Sources, stopped, r.Banners, r.Refused, r.Failed)
		})
		fill("time to fill", func(r *fillResult) string {
			return fmt.Sprintf("%.1f s (%.0f sources/s)", r.Secs, float64(r.Sources)/r.Secs)
		})
		fill("server before the fill", func(r *fillResult) string { return procSummary(r.Before) })
		fill("server after the fill", func(r *fillResult) string { return procSummary(r.After) })
		fill("stall: connections held when the agent came; most; refused", func(r *fillResult) string {
			return fmt.Sprintf("%d; %d; %d", r.StallHeld, r.StallMost, r.StallRefused)
		})
		fill("agent from a new address: in on the first try", func(r *fillResult) string { return fmt.Sprintf("%d of %d", r.FirstTry, r.Tries) })
		fill("... its round trip", func(r *fillResult) string { return medianRange(r.Agent) })
		fill("50 agents back up, stall on", func(r *fillResult) string { return fleet(r.FleetOK, r.FleetWall) })
		fill("server at the end, stall on", func(r *fillResult) string { return procSummary(r.End) })
		for name, r := range map[string]*attackResult{"ours": o, "openssh": s} {
			if r == nil || r.Fill == nil {
				continue
			}
			if len(r.Fill.Agent.Errors) > 0 {
				fmt.Fprintf(&b, "\n%s agent failures after the fill: %q\n", name, r.Fill.Agent.Errors)
			}
			if r.Fill.FleetWall != nil && len(r.Fill.FleetWall.Errors) > 0 {
				fmt.Fprintf(&b, "\n%s fleet failures after the fill (first 3): %q\n", name, r.Fill.FleetWall.Errors[:min(3, len(r.Fill.FleetWall.Errors))])
			}
		}
	}

	if (o != nil && o.Key != nil) || (s != nil && s.Key != nil) {
		fmt.Fprintf(&b, "\n### (g) one machine's key holds connections and sessions (from %s), the other machines back up\n\n", keySource)
		fmt.Fprintf(&b, "| | ours | OpenSSH |\n|---|---|---|\n")
		key := partRows(row, func(r *attackResult) *keyResult { return r.Key })
		key("hostile key's caps (this benchmark's): connections; sessions", func(r *keyResult) string {
			return fmt.Sprintf("%d; %d", r.MaxConns, r.MaxSessions)
		})
		key("other machines back up (50 agents)", func(r *keyResult) string { return fleet(r.FleetOK, r.FleetWall) })
		key("hostile: connections authenticated, in all; most at once; open at the end", func(r *keyResult) string {
			return fmt.Sprintf("%d; %d; %d", r.Conns, r.ConnsMost, r.ConnsNow)
		})
		key("hostile: sessions started, in all; most at once; open at the end", func(r *keyResult) string {
			return fmt.Sprintf("%d; %d; %d", r.Sessions, r.SessionsMost, r.SessionsNow)
		})
		key("hostile: connections failed; sessions refused", func(r *keyResult) string {
			return fmt.Sprintf("%d; %d (in %.0f s)", r.ConnsFailed, r.SessionsRefused, r.Secs)
		})
		key("server before", func(r *keyResult) string { return procSummary(r.Before) })
		key("server with the key settled", func(r *keyResult) string { return procSummary(r.During) })
		key("server at the end (fleet done, key on)", func(r *keyResult) string { return procSummary(r.End) })
		key("server once the key let go", func(r *keyResult) string { return procSummary(r.After) })
		for name, r := range map[string]*attackResult{"ours": o, "openssh": s} {
			if r != nil && r.Key != nil && r.Key.FleetWall != nil && len(r.Key.FleetWall.Errors) > 0 {
				fmt.Fprintf(&b, "\n%s fleet failures with the hostile key (first 3): %q\n", name, r.Key.FleetWall.Errors[:min(3, len(r.Key.FleetWall.Errors))])
			}
		}
	}

	if o != nil && o.Coordinator != nil {
		c := o.Coordinator
		fmt.Fprintf(&b, "\n### (g) slow clients on the built-in coordinator (ours only; OpenSSH has no coordinator)\n\n")
		fmt.Fprintf(&b, "%d addresses × %d half headers, %d addresses × %d bodies at 1 byte/s; %d agents calling agent_ping_checkin, %v apart.\n\n",
			coordHeaderAddrs, coordHeaderConns, coordBodyAddrs, coordBodyConns, coordAgents, coordPause)
		fmt.Fprintf(&b, "| | quiet | under attack |\n|---|---|---|\n")
		fmt.Fprintf(&b, "| legitimate calls succeeded | %d of %d in %.0f s | %d of %d in %.0f s |\n", c.QuietOK, c.QuietTried, c.QuietSecs, c.AttackedOK, c.AttackedTried, c.AttackSecs)
		fmt.Fprintf(&b, "| ... latency | %s | %s |\n", medianRange(c.Quiet), medianRange(c.Attacked))
		fmt.Fprintf(&b, "| failures | %s | %s |\n", orDash(topFailures(c.QuietFailures)), orDash(topFailures(c.AttackedFailures)))
		fmt.Fprintf(&b, "| server | %s | %s (attack settled), %s (end) |\n", procSummary(c.Before), procSummary(c.During), procSummary(c.After))
		fmt.Fprintf(&b, "| attack: half headers open at the end (opened in all) | - | %d (%d) |\n", c.HeaderOpen, c.HeaderOpened)
		fmt.Fprintf(&b, "| attack: slow bodies open at the end (opened in all); body bytes sent | - | %d (%d); %d |\n", c.BodyOpen, c.BodyOpened, c.BodyBytes)
	}
	return b.String()
}

// partRows narrows row to one part of each side's result, "-" for a side
// without that part.
func partRows[T any](row func(string, func(*attackResult) string), part func(*attackResult) *T) func(string, func(*T) string) {
	return func(name string, f func(*T) string) {
		row(name, func(r *attackResult) string {
			p := part(r)
			if p == nil {
				return "-"
			}
			return f(p)
		})
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
