package apitest_test

import (
	"net/http"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/apiclient/apitest/contract"
)

// backend is the fake API as the contract sees it.
type backend struct{ s *apitest.Server }

func (b backend) Handler() http.Handler                        { return b.s.Config.Handler }
func (b backend) Storage() (string, string)                    { return "primary", "storage-secret" }
func (b backend) AddStorage(_ *testing.T, name, secret string) { b.s.AddStorage(name, secret) }

func (b backend) AddMachine(_ *testing.T, uuid, unit, key string) {
	b.s.AddMachine("primary", uuid, apiclient.MachineInfo{UnitName: unit, SSHPublicKey: key})
	b.s.AddSource(uuid, "etc", apiclient.Source{Path: "/etc"})
	b.s.SetDue(uuid, "etc", false)
}

func (b backend) MakeDue(_ *testing.T, uuid, source string) { b.s.SetDue(uuid, source, true) }

func TestContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Backend {
		s := apitest.New()
		t.Cleanup(s.Close)
		s.AddStorage("primary", "storage-secret")
		return backend{s}
	})
}

func (b backend) AddRegistrationAuth(*testing.T) (string, string) {
	b.s.AddRegistrationAuth("Storage Registrations", "registration-secret")
	return "Storage Registrations", "registration-secret"
}
