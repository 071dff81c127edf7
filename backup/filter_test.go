package backup

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The reasons a rule reading files on the storage unit is refused.
const (
	mergeReadsLocal     = ": merge rules read files on the storage unit and are not allowed"
	modifierCReadsLocal = ": the C modifier reads files on the storage unit and is not allowed"
)

// filterRejects maps rules that must never reach rsync to the exact error:
// `filter rule "RULE"` (quoted as %q quotes it), then why. SENTINEL and
// PLAIN stand for local files in TestFilterRulesAgainstRsync, with rules
// and with bare exclude patterns.
var filterRejects = []struct {
	rule string
	why  string
}{
	{"merge SENTINEL", mergeReadsLocal},
	{"merge,- PLAIN", mergeReadsLocal},
	{"merge_SENTINEL", mergeReadsLocal},
	{". SENTINEL", mergeReadsLocal},
	{".- PLAIN", mergeReadsLocal},
	{".,- PLAIN", mergeReadsLocal},
	{"._SENTINEL", mergeReadsLocal},
	{".e SENTINEL", mergeReadsLocal},
	{":n- .rsync-filter", mergeReadsLocal},
	{": .rsync-filter", mergeReadsLocal},
	{":C", mergeReadsLocal},
	{"dir-merge,n- .rsync-filter", mergeReadsLocal},
	{"dir-merge .rsync-filter", mergeReadsLocal},
	{"-C", modifierCReadsLocal},
	{"-C x", modifierCReadsLocal},
	{"exclude,C x", modifierCReadsLocal},
	{"- a\n. SENTINEL", ` contains a line break or NUL`},
	{"- a\r. SENTINEL", ` contains a line break or NUL`},
	{"- a\x00b", ` contains a line break or NUL`},
	{"mergex", `: unknown rule`},
	{"merge\tSENTINEL", mergeReadsLocal},
	{"x foo", `: unknown rule`},
	{" - foo", `: unknown rule`},
	{"-", ` has no pattern`},
	{"- ", ` has no pattern`},
	{"exclude", ` has no pattern`},
	{"-e foo", `: invalid modifier 'e'`},
	{"-w foo", `: invalid modifier 'w'`},
	{"Hs foo", `: invalid modifier 's'`},
	{"! x", `: the clear rule takes no argument`},
	{"clear x", `: the clear rule takes no argument`},
}

// filterAccepts are rules rsync parses and that read nothing local.
var filterAccepts = []string{
	"", "# comment", "; comment",
	"- *.tmp", "+ *.c", "-/ /etc/passwd", "-! */", "-p *.o", "+,s foo", "-rs foo", "-x user.*",
	"H foo", "S foo", "P foo", "R foo", "Hp foo", "Px foo",
	"exclude foo", "include foo", "exclude,s foo", "hide foo", "show foo", "protect foo", "risk foo",
	"-_foo", "exclude_foo", "-  two spaces", "- cache/", "- /var/**/tmp", "!", "clear",
}

func TestCheckFilterRule(t *testing.T) {
	t.Parallel()
	for _, tt := range filterRejects {
		t.Run(tt.rule, func(t *testing.T) {
			want := "filter rule " + strconv.Quote(tt.rule) + tt.why
			err := checkFilterRule(tt.rule)
			if err == nil {
				t.Fatalf("got no error, want %q", want)
			}
			if got := err.Error(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	for _, rule := range filterAccepts {
		t.Run(rule, func(t *testing.T) {
			if err := checkFilterRule(rule); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
}

func TestFilterRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		filters  []string
		excludes []string
		want     []string
		wantErr  string
	}{
		{name: "none"},
		{name: "both", filters: []string{"- *.tmp", "", "+ keep"}, excludes: []string{"cache/", " spaced"},
			want: []string{"- *.tmp", "+ keep", "- cache/", "-  spaced"}},
		{name: "merge", filters: []string{"- ok", ". /etc/shadow"},
			wantErr: `filter rule ". /etc/shadow": merge rules read files on the storage unit and are not allowed`},
		{name: "exclude newline", excludes: []string{"a\n. /etc/shadow"},
			wantErr: `exclude "a\n. /etc/shadow": filter rule "- a\n. /etc/shadow" contains a line break or NUL`},
		{name: "exclude empty", excludes: []string{""}, wantErr: "empty exclude pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterRules(tt.filters, tt.excludes)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterRulesAgainstRsync checks the rule parser against the real
// rsync: every rejected merge-style rule really makes rsync read a local
// file (here it hides secret.txt), and every accepted rule is one rsync
// parses and that leaves secret.txt alone.
func TestFilterRulesAgainstRsync(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	home := filepath.Join(tmp, "home")
	sentinel := filepath.Join(tmp, "sentinel")
	plain := filepath.Join(tmp, "plain")
	for _, d := range []string{src, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(src, "secret.txt"):    "s",
		filepath.Join(src, "other.txt"):     "o",
		filepath.Join(src, ".rsync-filter"): "secret.txt\n",
		filepath.Join(src, ".cvsignore"):    "secret.txt\n",
		filepath.Join(home, ".cvsignore"):   "secret.txt\n",
		sentinel:                            "- secret.txt\n",
		plain:                               "secret.txt\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, rule string) (string, error) {
		mf := filepath.Join(t.TempDir(), "rules")
		if err := os.WriteFile(mf, []byte(rule+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(context.Background(), "rsync", "-a", "-v", "--dry-run", "--filter=merge "+mf, src+"/", filepath.Join(t.TempDir(), "dst")+"/")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		t.Logf("rsync output:\n%s", out.String())
		return out.String(), err
	}
	for _, tt := range filterRejects {
		rule := strings.NewReplacer("SENTINEL", sentinel, "PLAIN", plain).Replace(tt.rule)
		if strings.ContainsAny(rule, "\n\r\x00") || tt.why != mergeReadsLocal {
			continue
		}
		t.Run("rejected "+tt.rule, func(t *testing.T) {
			if checkFilterRule(rule) == nil {
				t.Fatalf("checkFilterRule(%q) accepted it", rule)
			}
			out, err := run(t, rule)
			if err == nil && strings.Contains(out, "secret.txt") {
				t.Errorf("rsync did not read a local file for %q; the test cannot show it is dangerous", rule)
			}
		})
	}
	for _, rule := range filterAccepts {
		t.Run("accepted "+rule, func(t *testing.T) {
			out, err := run(t, rule)
			if err != nil {
				t.Fatalf("rsync refused accepted rule %q: %v", rule, err)
			}
			if !strings.Contains(out, "secret.txt") && !strings.Contains(rule, "*") && rule != "-! */" {
				t.Errorf("accepted rule %q hid secret.txt", rule)
			}
		})
	}
}

func FuzzFilterRule(f *testing.F) {
	for _, tt := range filterRejects {
		f.Add(tt.rule)
	}
	for _, r := range filterAccepts {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		if checkFilterRule(rule) != nil {
			return
		}
		if strings.ContainsAny(rule, "\n\r\x00") {
			t.Fatalf("accepted %q with a line break or NUL", rule)
		}
		if rule == "" || rule[0] == '#' || rule[0] == ';' {
			return
		}
		// An independent, blunter statement of the rules: no rule whose
		// type is merge or dir-merge, and no C modifier.
		if rule[0] == '.' || rule[0] == ':' {
			t.Fatalf("accepted merge rule %q", rule)
		}
		for _, long := range []string{"merge", "dir-merge"} {
			if after, ok := strings.CutPrefix(rule, long); ok && (after == "" || strings.ContainsAny(after[:1], " \t\v\f_,")) {
				t.Fatalf("accepted merge rule %q", rule)
			}
		}
		prefix, _, _ := strings.Cut(rule, " ")
		prefix, _, _ = strings.Cut(prefix, "_")
		if strings.Contains(prefix, "C") {
			t.Fatalf("accepted C modifier in %q", rule)
		}
	})
}
