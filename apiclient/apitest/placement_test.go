package apitest

import (
	"errors"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestPlacementSkipsUnpublished: new machines go only to published
// units; with none, turku-api's 404.
func TestPlacementSkipsUnpublished(t *testing.T) {
	s := New()
	t.Cleanup(s.Close)
	s.AddStorage("a", "x")
	s.AddStorage("b", "y")
	s.mu.Lock()
	s.units["a"].published = false
	s.mu.Unlock()
	for i := range 10 {
		if got, err := s.PlaceMachine(string(rune('0'+i)), apiclient.MachineInfo{}); err != nil || got != "b" {
			t.Fatalf("placed on %q (%v), want b", got, err)
		}
	}
	s.mu.Lock()
	s.units["b"].published = false
	s.mu.Unlock()
	if got, err := s.PlaceMachine("new", apiclient.MachineInfo{}); !errors.Is(err, ErrNoStorage) {
		t.Errorf("with no published unit: %q, %v; want ErrNoStorage", got, err)
	}
	if got, _ := s.PlaceMachine("0", apiclient.MachineInfo{}); got != "b" {
		t.Errorf("a placed machine moved to %q", got)
	}
}
