package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestInventory(t *testing.T) {
	root := t.TempDir()
	varDir := filepath.Join(root, "var")
	machines := filepath.Join(varDir, "machines")
	vol := filepath.Join(root, "vol")
	const (
		a = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
		b = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
		c = "33333333-cccc-4ccc-8ccc-cccccccccccc" // its directory is gone
	)
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(machines, name)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(machines)
	mkdir(filepath.Join(vol, a, "etc.snapshots", "etc_20261124-031500_0001"))
	mkdir(filepath.Join(vol, a, "etc.snapshots", "etc_20261125-031500_0002"))
	mkdir(filepath.Join(vol, a, "etc.snapshots", "_delete-etc_20261101-031500_0000"))
	mkdir(filepath.Join(vol, a, "db")) // snapshot mode none: a working tree only
	mkdir(filepath.Join(vol, b))
	link(filepath.Join(vol, b), b)
	link(filepath.Join(vol, a), a)
	link(a, "prod-www-web1")
	link(a, "web1-old")
	link(filepath.Join(vol, c), c)
	if err := os.WriteFile(filepath.Join(machines, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, root)

	got, err := Inventory(t.Context(), varDir, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		UUID, Dir string
		Names     []string
		Sources   map[string][]string
		Newest    map[string]string
		Err       bool
	}
	var rows []row
	for _, m := range got {
		r := row{UUID: m.UUID, Dir: m.Dir, Names: m.Names, Sources: map[string][]string{}, Newest: map[string]string{}, Err: m.Err != nil}
		for _, s := range m.Sources {
			r.Sources[s.Name] = []string{}
			for _, sn := range s.Snapshots {
				r.Sources[s.Name] = append(r.Sources[s.Name], sn.Name)
			}
			if n := s.Newest(); n != nil {
				r.Newest[s.Name] = n.Name
			}
		}
		rows = append(rows, r)
	}
	want := []row{
		{UUID: a, Dir: filepath.Join(vol, a), Names: []string{"prod-www-web1", "web1-old"},
			Sources: map[string][]string{"db": {}, "etc": {"etc_20261124-031500_0001", "etc_20261125-031500_0002"}},
			Newest:  map[string]string{"etc": "etc_20261125-031500_0002"}},
		{UUID: b, Dir: filepath.Join(vol, b), Names: []string{}, Sources: map[string][]string{}, Newest: map[string]string{}},
		{UUID: c, Dir: filepath.Join(vol, c), Names: []string{}, Sources: map[string][]string{}, Newest: map[string]string{}, Err: true},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("inventory (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, listTree(t, root)); diff != "" {
		t.Errorf("Inventory changed the disk (-before +after):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Inventory(ctx, varDir, time.UTC); err == nil {
		t.Error("cancelled Inventory returned no error")
	}
	if got, err := Inventory(t.Context(), filepath.Join(root, "nothing"), time.UTC); err != nil || len(got) != 0 {
		t.Errorf("no machines dir: %v, %v", got, err)
	}
}
