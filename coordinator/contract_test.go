package coordinator

import (
	"context"
	"net/http"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient/apitest/contract"
)

// contractBackend is the built-in coordinator as the contract sees it:
// its in-process handler, which serves the storage-facing calls.
type contractBackend struct{ f *fixture }

func (b contractBackend) Handler() http.Handler     { return b.f.c.InProcessHandler() }
func (b contractBackend) Storage() (string, string) { return storageName, storageSecret }

func (b contractBackend) AddMachine(t *testing.T, uuid, unit, key string) {
	t.Helper()
	b.f.call(t, "/v1/update_config", obj{
		"machine": obj{"uuid": uuid, "secret": "machine-secret", "unit_name": unit, "ssh_public_key": key,
			"sources": obj{"etc": obj{"path": "/etc"}}},
		"auth": regAuth(),
	})
}

func (b contractBackend) MakeDue(t *testing.T, uuid, source string) {
	t.Helper()
	if err := b.f.c.Store().RunNow(context.Background(), uuid, source); err != nil {
		t.Fatalf("RunNow: %v", err)
	}
}

func (b contractBackend) AddStorage(t *testing.T, name, secret string) {
	t.Helper()
	reg, err := b.f.c.Store().CreateRegistrationAuth(context.Background(), "storage", "")
	if err != nil {
		t.Fatal(err)
	}
	b.f.call(t, "/v1/storage_update_config", obj{
		"storage": obj{"name": name, "secret": secret, "ssh_ping_host": name + ".example.com",
			"ssh_ping_port": 22, "ssh_ping_user": "root"},
		"auth": obj{"name": "Storage Registrations", "secret": reg},
	})
}

func TestContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Backend { return contractBackend{newFixture(t)} })
}

func (b contractBackend) AddRegistrationAuth(t *testing.T) (string, string) {
	t.Helper()
	secret, err := b.f.c.Store().CreateRegistrationAuth(context.Background(), "storage", "")
	if err != nil {
		t.Fatal(err)
	}
	return "Storage Registrations", secret
}
