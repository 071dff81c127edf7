//go:build bench

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// report renders results as the Markdown table docs/benchmarks.md quotes.
func report(r *results) string {
	var b strings.Builder
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "## turkubench results (%s mode, %s, %s)\n\n", mode, r.Started.Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(1e9))
	fmt.Fprintf(&b, "Medians; min-max in brackets; n = runs per side. Ratio = ours/OpenSSH.\n\n")
	fmt.Fprintf(&b, "| measurement | ours | OpenSSH | ours/OpenSSH | direct rsync | n |\n|---|---|---|---|---|---|\n")
	cell := func(s *stat, format string) string {
		if s == nil {
			return "-"
		}
		if s.Refused != "" {
			return "refused: " + s.Refused
		}
		if len(s.Runs) == 0 {
			return "-"
		}
		return fmt.Sprintf(format+" %s ["+format+"-"+format+"]", s.Median(), s.Unit, s.Min(), s.Max())
	}
	ratio := func(a, o *stat) string {
		if a == nil || o == nil || len(a.Runs) == 0 || len(o.Runs) == 0 || o.Median() == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a.Median()/o.Median())
	}
	n := func(s *stat) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprint(len(s.Runs))
	}
	for _, k := range []string{"1", "10000"} {
		if st, ok := r.RoundTrip[k]; ok {
			fmt.Fprintf(&b, "| (a) session round trip, %s machines | %s | %s | %s | - | %s |\n",
				k, cell(st["ours"], "%.1f"), cell(st["openssh"], "%.1f"), ratio(st["ours"], st["openssh"]), n(st["ours"]))
		}
	}
	for _, c := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Throughput {
			if !yield(k) {
				return
			}
		}
	}) {
		st := r.Throughput[c]
		fmt.Fprintf(&b, "| (b) tunnel throughput, ssh -c %s | %s | %s | %s | - | %s |\n",
			c, cell(st["ours"], "%.0f"), cell(st["openssh"], "%.0f"), ratio(st["ours"], st["openssh"]), n(st["openssh"]))
		for _, side := range []string{"server", "client"} {
			o, s := st["ours "+side+" cpu"], st["openssh "+side+" cpu"]
			if st["ours"].Refused != "" {
				o = nil
			}
			fmt.Fprintf(&b, "| (b) ... %s CPU per MiB, ssh -c %s | %s | %s | %s | - | %s |\n",
				side, c, cell(o, "%.2f"), cell(s, "%.2f"), ratio(o, s), n(s))
		}
	}
	if t := r.Throughput; t != nil && t["chacha20-poly1305@openssh.com"]["ours"].Refused != "" {
		o, c := t["aes128-gcm@openssh.com"]["ours"], t["chacha20-poly1305@openssh.com"]["openssh"]
		fmt.Fprintf(&b, "| (b) tunnel throughput, client defaults (ours: aes128-gcm, OpenSSH: chacha20-poly1305) | %s | %s | %s | - | %s |\n",
			cell(o, "%.0f"), cell(c, "%.0f"), ratio(o, c), n(c))
	}
	if t := r.Throughput; t != nil && t["chacha20-poly1305@openssh.com"]["ours"].Refused != "" {
		o, c := t["aes128-gcm@openssh.com"]["ours server cpu"], t["chacha20-poly1305@openssh.com"]["openssh server cpu"]
		fmt.Fprintf(&b, "| (b) ... server CPU per MiB, client defaults (ours: aes128-gcm, OpenSSH: chacha20-poly1305) | %s | %s | %s | - | %s |\n",
			cell(o, "%.2f"), cell(c, "%.2f"), ratio(o, c), n(c))
	}
	for _, k := range []string{"A full", "A unchanged", "B full", "B unchanged"} {
		st, ok := r.Backups[k]
		if !ok {
			continue
		}
		direct := "-"
		if st["direct"] != nil {
			direct = cell(st["direct"], "%.2f") + fmt.Sprintf(" (ours/direct %s)", ratio(st["ours"], st["direct"]))
		}
		fmt.Fprintf(&b, "| (c) backup %s | %s | %s | %s | %s | %s |\n",
			k, cell(st["ours"], "%.2f"), cell(st["openssh"], "%.2f"), ratio(st["ours"], st["openssh"]), direct, n(st["ours"]))
		for _, side := range []string{"storage", "agent"} {
			st, ok := r.Backups[k+" "+side+" cpu"]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| (c) ... %s-side CPU time, %s | %s | %s | %s | %s | %s |\n",
				side, k, cell(st["ours"], "%.2f"), cell(st["openssh"], "%.2f"), ratio(st["ours"], st["openssh"]),
				cell(st["direct"], "%.2f")+fmt.Sprintf(" (ours/direct %s)", ratio(st["ours"], st["direct"])), n(st["ours"]))
		}
	}
	if r.FleetOK != nil {
		fmt.Fprintf(&b, "| (d) %d agents at once (%d port collisions): successful backups | %s | %s | - | - | %s |\n",
			len(r.FleetPorts), r.FleetColl, cell(r.FleetOK["ours"], "%.0f"), cell(r.FleetOK["openssh"], "%.0f"), n(r.FleetOK["ours"]))
		fmt.Fprintf(&b, "| (d) %d agents at once: wall time | %s | %s | %s | - | %s |\n",
			len(r.FleetPorts), cell(r.FleetWall["ours"], "%.1f"), cell(r.FleetWall["openssh"], "%.1f"), ratio(r.FleetWall["ours"], r.FleetWall["openssh"]), n(r.FleetWall["ours"]))
	}
	if r.NightOK != nil {
		fmt.Fprintf(&b, "| (f) a real night, %d agents backing up B at once: successful backups | %s | %s | - | - | %s |\n",
			len(r.NightPorts), cell(r.NightOK["ours"], "%.0f"), cell(r.NightOK["openssh"], "%.0f"), n(r.NightOK["ours"]))
		fmt.Fprintf(&b, "| (f) ... wall time | %s | %s | %s | - | %s |\n",
			cell(r.NightWall["ours"], "%.1f"), cell(r.NightWall["openssh"], "%.1f"), ratio(r.NightWall["ours"], r.NightWall["openssh"]), n(r.NightWall["ours"]))
		fmt.Fprintf(&b, "| (f) ... storage-side CPU time | %s | %s | %s | - | %s |\n",
			cell(r.NightCPU["ours"], "%.1f"), cell(r.NightCPU["openssh"], "%.1f"), ratio(r.NightCPU["ours"], r.NightCPU["openssh"]), n(r.NightCPU["ours"]))
	}
	if m := r.Memory; m != nil {
		o, s := m["ours"], m["openssh"]
		fmt.Fprintf(&b, "| (e) 5 s after loading 10,000 machines: RSS (PSS) | %.1f MiB (%.1f) | %.1f MiB (%.1f), %d process | %.2f | - | 1 |\n",
			kib(o.Loaded.RSS), kib(o.Loaded.PSS), kib(s.Loaded.RSS), kib(s.Loaded.PSS), s.Loaded.Procs, float64(o.Loaded.RSS)/float64(s.Loaded.RSS))
		if o.Settle > 0 {
			fmt.Fprintf(&b, "| (e) idle %v later, 10,000 machines: RSS (PSS) | %.1f MiB (%.1f) | %.1f MiB (%.1f), %d process | %.2f | - | 1 |\n",
				o.Settle, kib(o.Idle.RSS), kib(o.Idle.PSS), kib(s.Idle.RSS), kib(s.Idle.PSS), s.Idle.Procs, float64(o.Idle.RSS)/float64(s.Idle.RSS))
		}
		fmt.Fprintf(&b, "| (e) added per concurrent session (%d sessions): RSS (PSS) | %.2f MiB (%.2f) | %.2f MiB (%.2f), %d processes | %.2f (PSS %.2f) | - | 1 |\n",
			o.Sessions, o.PerSessionRSS()/1024, o.PerSessionPSS()/1024, s.PerSessionRSS()/1024, s.PerSessionPSS()/1024,
			s.Busy.Procs-s.Idle.Procs, o.PerSessionRSS()/s.PerSessionRSS(), o.PerSessionPSS()/s.PerSessionPSS())
	}
	if sm, ok := r.Memory["ours, session machines only"]; ok {
		fmt.Fprintf(&b, "| (e) ours with only the %d session machines registered: idle RSS, added per session | %.1f MiB, %.2f MiB (PSS %.2f) | - | - | - | 1 |\n",
			sm.Sessions, kib(sm.Idle.RSS), sm.PerSessionRSS()/1024, sm.PerSessionPSS()/1024)
	}
	fmt.Fprintf(&b, "\nNegotiated by default:\n\n")
	for _, k := range []string{"ours", "openssh"} {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Algorithms[k])
	}
	if len(r.Datasets) > 0 {
		fmt.Fprintf(&b, "\nDatasets:\n\n")
		for _, d := range r.Datasets {
			fmt.Fprintf(&b, "- %s: %s, %d bytes\n", d.name, d.desc, d.bytes)
		}
	}
	for _, side := range []string{"ours", "openssh"} {
		if r.FleetWall != nil && len(r.FleetWall[side].Errors) > 0 {
			fmt.Fprintf(&b, "\n(d) %s failures:\n\n", side)
			for _, e := range r.FleetWall[side].Errors {
				fmt.Fprintf(&b, "- %s\n", e)
			}
		}
		if r.NightWall != nil && len(r.NightWall[side].Errors) > 0 {
			fmt.Fprintf(&b, "\n(f) %s failures:\n\n", side)
			for _, e := range r.NightWall[side].Errors {
				fmt.Fprintf(&b, "- %s\n", e)
			}
		}
	}
	fmt.Fprintf(&b, "\nEnvironment:\n\n")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Env {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Env[k])
	}
	if r.Attack != nil {
		b.WriteString(attackReport(r.Attack))
	}
	if r.Night != nil {
		b.WriteString(nightReport(r))
	}
	return b.String()
}

// nightReport renders (h), the night, side by side: both nights
// together, then each night.
func nightReport(r *results) string {
	var b strings.Builder
	o, s := r.Night["ours"], r.Night["openssh"]
	fmt.Fprintf(&b, "\n### (h) the night: %v agents over %v, two nights\n\n", r.Params["h_agents"], r.Params["h_window"])
	fmt.Fprintf(&b, "| | ours | OpenSSH | ours/OpenSSH |\n|---|---|---|---|\n")
	row := func(name string, f func(*nightSide) float64, format string) {
		cell := func(side *nightSide) string {
			if side == nil {
				return "-"
			}
			return fmt.Sprintf(format, f(side))
		}
		ratio := "-"
		if o != nil && s != nil && f(s) != 0 {
			ratio = fmt.Sprintf("%.2f", f(o)/f(s))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, cell(o), cell(s), ratio)
	}
	row("agents completed on both nights", func(n *nightSide) float64 { return float64(n.Completed) }, "%.0f")
	row("agents failed on a night", func(n *nightSide) float64 { return float64(n.Failed) }, "%.0f")
	row("sessions refused at admission", func(n *nightSide) float64 { return float64(n.RefusedAtAdmission) }, "%.0f")
	row("session p50, connect to end (s)", func(n *nightSide) float64 { return n.P50 }, "%.2f")
	row("session p99 (s)", func(n *nightSide) float64 { return n.P99 }, "%.2f")
	row("peak RSS of the storage side (MiB)", func(n *nightSide) float64 { return n.PeakRSSMiB }, "%.1f")
	row("peak fds of the storage side", func(n *nightSide) float64 { return float64(n.PeakFDs) }, "%.0f")
	row("storage-side CPU per backup (s)", func(n *nightSide) float64 { return n.CPUPerBackup }, "%.3f")
	row("API calls per backup", func(n *nightSide) float64 { return n.APICallsPerBackup }, "%.2f")
	fmt.Fprintf(&b, "| reports exactly once | %s | %s | |\n", yesNo(o), yesNo(s))
	for night := range 2 {
		get := func(side *nightSide) *nightRun {
			if side == nil || night >= len(side.Nights) {
				return nil
			}
			return side.Nights[night]
		}
		cell := func(n *nightRun) string {
			if n == nil {
				return "-"
			}
			return fmt.Sprintf("%d ok, %d failed (%d refused); p50 %.2f s, p99 %.2f s, max %.2f s; %d at once; CPU %.3f s/backup (own %.2f of %.2f s); peak %.1f MiB, %d fds, %d procs; %d API calls; dup/missing/spooled reports %d/%d/%d; slot waits > 100 ms: %d, median %.2f s, max %.2f s",
				n.Completed, n.Failed, n.RefusedAtAdmission, n.P50, n.P99, n.Max, n.MaxConcurrent, n.CPUPerBackup, n.CPUOwnSeconds, n.CPUSeconds, n.PeakRSSMiB, n.PeakFDs, n.PeakProcs, n.APICalls, n.Duplicates, n.Missing, n.LeftSpooled, n.SlotWaited, n.SlotWaitP50, n.SlotWaitMax)
		}
		fmt.Fprintf(&b, "| night %d | %s | %s | |\n", night+1, cell(get(o)), cell(get(s)))
	}
	if bu := r.Burst; bu != nil {
		for _, round := range []string{"first_time", "known", "after_restart"} {
			cell := func(side string) string {
				x := bu.Sides[side][round]
				if x == nil {
					return "-"
				}
				return fmt.Sprintf("%d ok, %d refused at admission, %d other", x.OK, x.Refused, x.Other)
			}
			fmt.Fprintf(&b, "| burst of %d agents at one moment, %s | %s | %s | |\n", bu.Agents, strings.ReplaceAll(round, "_", "-"), cell("ours"), cell("openssh"))
		}
	}
	if sc := r.Scale; sc != nil {
		big := strconv.Itoa(sc.Big)
		for _, k := range []string{"1000", big} {
			o, s := sc.RoundTrip["ours"][k], sc.RoundTrip["openssh"][k]
			cell := func(st *stat) string {
				if st == nil || len(st.Runs) == 0 {
					return "-"
				}
				return fmt.Sprintf("%.1f ms [%.1f-%.1f]", st.Median(), st.Min(), st.Max())
			}
			ratio := "-"
			if o != nil && s != nil && s.Median() > 0 {
				ratio = fmt.Sprintf("%.2f", o.Median()/s.Median())
			}
			fmt.Fprintf(&b, "| round trip, %s machines (n=%d) | %s | %s | %s |\n", k, len(o.Runs), cell(o), cell(s), ratio)
		}
		fmt.Fprintf(&b, "| ours: round trip at %s over 1,000 machines | %.2f | | |\n", big, sc.RoundTripRatioBig)
		fmt.Fprintf(&b, "| idle RSS, %s machines (5 s after the round trips) | %.1f MiB | %.1f MiB | |\n", big, sc.IdleRSSMiB["ours"], sc.IdleRSSMiB["openssh"])
		if sc.Settle > 0 {
			fmt.Fprintf(&b, "| idle RSS, %s machines, %v later | %.1f MiB | | |\n", big, sc.Settle, sc.SettledRSSMiB)
		}
	}
	for _, side := range []string{"ours", "openssh"} {
		n := r.Night[side]
		if n == nil {
			continue
		}
		for _, nr := range n.Nights {
			if len(nr.Failures) > 0 {
				fmt.Fprintf(&b, "\n(h) %s night %d failures (first %d of %d):\n\n", side, nr.Night, len(nr.Failures), nr.Failed)
				for _, f := range nr.Failures {
					fmt.Fprintf(&b, "- %s\n", f)
				}
			}
		}
	}
	return b.String()
}

func yesNo(n *nightSide) string {
	switch {
	case n == nil:
		return "-"
	case n.ReportsExactlyOnce:
		return "yes"
	}
	return "no"
}

func kib(v int64) float64 { return float64(v) / 1024 }

// attackRows returns a writer of table rows to b with a cell for ours and
// one for OpenSSH of m, each f of the side's result, "-" for a side not run.
func attackRows(b *strings.Builder, m map[string]*attackResult) func(name string, f func(r *attackResult) string) {
	o, s := m["ours"], m["openssh"]
	return func(name string, f func(r *attackResult) string) {
		cell := func(r *attackResult) string {
			if r == nil {
				return "-"
			}
			return f(r)
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, cell(o), cell(s))
	}
}

// medianRange is st as "median unit [min-max]", "-" without runs.
func medianRange(st *stat) string {
	if st == nil || len(st.Runs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f %s [%.1f-%.1f]", st.Median(), st.Unit, st.Min(), st.Max())
}

// procSummary is a server's processes, memory and descriptors in one cell.
func procSummary(p procState) string {
	return fmt.Sprintf("%d procs, RSS %.1f MiB, PSS %.1f MiB, %d fds", p.Procs, kib(p.RSSKiB), kib(p.PSSKiB), p.FDs)
}

// attackReport renders (g), the open-internet scenario, side by side.
func attackReport(m map[string]*attackResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### (g) under attack: %d idle connections from %s, key probes from %s (%d workers, %d keys each)\n\n",
		floodConns, floodSource, probeSource, probeWorkers, probeKeys)
	fmt.Fprintf(&b, "| | ours | OpenSSH |\n|---|---|---|\n")
	o, s := m["ours"], m["openssh"]
	row := attackRows(&b, m)
	row("agent round trip, quiet", func(r *attackResult) string { return medianRange(r.Quiet) })
	row("agent round trip, under attack", func(r *attackResult) string { return medianRange(r.Attacked) })
	row("... attacked/quiet", func(r *attackResult) string {
		if len(r.Attacked.Runs) == 0 || r.Quiet.Median() == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", r.Attacked.Median()/r.Quiet.Median())
	})
	row("agent connects on first try", func(r *attackResult) string { return fmt.Sprintf("%d of %d", r.FirstTry, r.Tries) })
	row("50 agents back up, quiet", func(r *attackResult) string {
		if r.FleetQuietOK == nil || len(r.FleetQuietOK.Runs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f of 50 in %.1f s", r.FleetQuietOK.Runs[0], r.FleetQuietWall.Runs[0])
	})
	row("50 agents back up, under attack", func(r *attackResult) string {
		if r.FleetOK == nil || len(r.FleetOK.Runs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f of 50 in %.1f s", r.FleetOK.Runs[0], r.FleetWall.Runs[0])
	})
	row("server before the attack", func(r *attackResult) string { return procSummary(r.Before) })
	row("server after the attacked round trips", func(r *attackResult) string { return procSummary(r.During) })
	row("server after the 50 agents, attack on", func(r *attackResult) string { return procSummary(r.After) })
	row("flood: connections open at the end; answered with any bytes (total)", func(r *attackResult) string {
		return fmt.Sprintf("%d; %d", r.FloodHeld, r.FloodBanner)
	})
	row("probe: connections; answered with any bytes", func(r *attackResult) string {
		return fmt.Sprintf("%d; %d in %.0f s", r.ProbeConns, r.ProbeBanner, r.ProbeSecs)
	})
	for name, r := range map[string]*attackResult{"ours": o, "openssh": s} {
		if r != nil && len(r.Attacked.Errors) > 0 {
			fmt.Fprintf(&b, "\n%s agent failures: %q\n", name, r.Attacked.Errors)
		}
		if r != nil && r.FleetWall != nil && len(r.FleetWall.Errors) > 0 {
			fmt.Fprintf(&b, "\n%s fleet failures (first 3): %q\n", name, r.FleetWall.Errors[:min(3, len(r.FleetWall.Errors))])
		}
	}
	b.WriteString(roundTwoReport(m))
	return b.String()
}
