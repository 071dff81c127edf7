package apiclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// StorageAuth identifies this storage unit on every call after registration.
type StorageAuth struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// RegistrationAuth is the current turku-api registration credential, sent
// as the "auth" object of storage_update_config on first registration.
type RegistrationAuth struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// StorageRegistration is the "storage" object of storage_update_config
// (docs/protocol.md §3.1). Space figures are MiB; the API stores them as 32-bit
// positive integers.
type StorageRegistration struct {
	Name            string   `json:"name"`
	Secret          string   `json:"secret"`
	SSHPingHost     string   `json:"ssh_ping_host"`
	SSHPingPort     int      `json:"ssh_ping_port"`
	SSHPingUser     string   `json:"ssh_ping_user"`
	SSHPingHostKeys []string `json:"ssh_ping_host_keys"`
	SpaceTotal      int64    `json:"space_total"`
	SpaceAvailable  int64    `json:"space_available"`
	Published       *bool    `json:"published,omitempty"`
}

// UpdateConfigRequest is the body of storage_update_config. Auth is nil,
// a RegistrationAuth, or (older APIs, config key api_auth) a plain string.
type UpdateConfigRequest struct {
	Storage StorageRegistration `json:"storage"`
	Auth    any                 `json:"auth,omitempty"`
}

// MachineInfo is one machine assigned to this storage unit, as listed by
// storage_update_config. Null strings decode as "".
type MachineInfo struct {
	EnvironmentName string `json:"environment_name"`
	ServiceName     string `json:"service_name"`
	UnitName        string `json:"unit_name"`
	Comment         string `json:"comment"`
	SSHPublicKey    string `json:"ssh_public_key"`
}

// UpdateConfigResponse is the reply of storage_update_config: every active,
// published machine assigned to this storage unit, keyed by UUID.
type UpdateConfigResponse struct {
	Machines map[string]MachineInfo `json:"machines"`
}

// Source is one scheduled source in a storage_ping_checkin reply
// (docs/protocol.md §3.2). Any field may be missing or null.
type Source struct {
	Path                string       `json:"path"`
	Retention           string       `json:"retention"`
	Bwlimit             FlexString   `json:"bwlimit"`
	Filter              []string     `json:"filter"`
	Exclude             []string     `json:"exclude"`
	SharedService       bool         `json:"shared_service"`
	LargeRotatingFiles  bool         `json:"large_rotating_files"`
	LargeModifyingFiles bool         `json:"large_modifying_files"`
	SnapshotMode        string       `json:"snapshot_mode"`
	PreserveHardLinks   bool         `json:"preserve_hard_links"`
	Username            string       `json:"username,omitempty"`
	Password            string       `json:"password,omitempty"`
	Storage             *SourceStore `json:"storage,omitempty"`
}

// SourceStore is the storage block the API attaches to each source.
type SourceStore struct {
	Name            string   `json:"name"`
	SSHPingHost     string   `json:"ssh_ping_host"`
	SSHPingHostKeys []string `json:"ssh_ping_host_keys"`
	SSHPingPort     int      `json:"ssh_ping_port"`
	SSHPingUser     string   `json:"ssh_ping_user"`
}

// CheckinMachine is the "machine" object of a storage_ping_checkin reply.
type CheckinMachine struct {
	UUID             string            `json:"uuid"`
	EnvironmentName  string            `json:"environment_name"`
	ServiceName      string            `json:"service_name"`
	UnitName         string            `json:"unit_name"`
	ScheduledSources map[string]Source `json:"scheduled_sources"`
}

// CheckinResponse is the reply of storage_ping_checkin.
type CheckinResponse struct {
	Machine CheckinMachine `json:"machine"`
}

type checkinRequest struct {
	Storage StorageAuth `json:"storage"`
	Machine machineRef  `json:"machine"`
}

type machineRef struct {
	UUID string `json:"uuid"`
}

// SourceReport is the outcome of one source's run (docs/protocol.md §3.3).
// Times are Unix epoch seconds.
type SourceReport struct {
	Success   bool    `json:"success"`
	Snapshot  string  `json:"snapshot,omitempty"`
	Summary   string  `json:"summary"`
	TimeBegin float64 `json:"time_begin"`
	TimeEnd   float64 `json:"time_end"`
}

type sourceUpdateRequest struct {
	Storage StorageAuth         `json:"storage"`
	Machine sourceUpdateMachine `json:"machine"`
}

type sourceUpdateMachine struct {
	UUID    string                  `json:"uuid"`
	Sources map[string]SourceReport `json:"sources"`
}

// Health is the reply of the health call.
type Health struct {
	Healthy bool           `json:"healthy"`
	Date    string         `json:"date"`
	Counts  map[string]any `json:"counts"`
}

// FlexString accepts a JSON string, number or null (turku-api stores
// bwlimit as text, but hand-written configs send numbers).
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or a number, got %s", b)
		}
		if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			return fmt.Errorf("want a string or a number, got %s", b)
		}
		*f = FlexString(n.String())
	}
	return nil
}
