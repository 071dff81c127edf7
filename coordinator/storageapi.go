package coordinator

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The storage-facing calls, as turku-api's views.py answers them.

// storageLogin authenticates the storage unit of a request. For
// storage_update_config an unknown storage is not an error: it returns nil
// so the caller can try registration.
func (c *Coordinator) storageLogin(ctx context.Context, req map[string]any, isUpdateConfig bool) (*storageRow, error) {
	if _, ok := req["storage"]; !ok {
		return nil, badRequest(`Missing required option "storage"`)
	}
	rs, ok := object(req, "storage")
	if !ok {
		return nil, errBadAuth
	}
	for _, k := range []string{"name", "secret"} {
		if _, ok := rs[k]; !ok {
			return nil, errBadAuth
		}
	}
	name, nameOK := rs["name"].(string)
	var st *storageRow
	if nameOK {
		var err error
		if st, err = c.store.storageByName(ctx, c.store.db, name, true); err != nil {
			return nil, err
		}
	}
	if st == nil {
		if isUpdateConfig && nameOK {
			return nil, nil
		}
		return nil, c.refuseUnknown(rs["secret"])
	}
	secret, ok := rs["secret"].(string)
	if !ok {
		return nil, c.refuseUnknown(rs["secret"])
	}
	if err := c.checkSecret(secret, st.SecretHash); err != nil {
		return nil, err
	}
	return st, nil
}

// storageMachine logs the storage unit in and finds the machine its
// request is about: active, published and assigned to that storage unit.
func (c *Coordinator) storageMachine(ctx context.Context, req map[string]any) (*storageRow, *machineRow, map[string]any, error) {
	st, err := c.storageLogin(ctx, req, false)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, ok := req["machine"]; !ok {
		return nil, nil, nil, badRequest(`Missing required option "machine"`)
	}
	rm, ok := object(req, "machine")
	if !ok {
		return nil, nil, nil, badRequest(`Missing required option "machine.uuid"`)
	}
	if _, ok := rm["uuid"]; !ok {
		return nil, nil, nil, badRequest(`Missing required option "machine.uuid"`)
	}
	u, err := parseUUID(rm["uuid"])
	if err != nil {
		// turku-api lets uuid.UUID's ValueError escape (500).
		return nil, nil, nil, badRequest("Invalid machine UUID")
	}
	var m machineRow
	found, err := getRow(ctx, c.store.db, &m, `SELECT `+machineCols+` FROM machines
		WHERE uuid = ? AND storage_id = ? AND active = 1 AND published = 1`, formatUUID(u), st.ID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("look up machine: %w", err)
	}
	if !found {
		return nil, nil, nil, notFound("Machine not found")
	}
	return st, &m, rm, nil
}

type storageMachineJSON struct {
	EnvironmentName *string `json:"environment_name"`
	ServiceName     *string `json:"service_name"`
	UnitName        string  `json:"unit_name"`
	Comment         *string `json:"comment"`
	SSHPublicKey    string  `json:"ssh_public_key"`
}

func (c *Coordinator) storageUpdateConfig(ctx context.Context, req map[string]any) (any, error) {
	st, err := c.storageLogin(ctx, req, true)
	if err != nil {
		return nil, err
	}
	rs, _ := object(req, "storage")
	name := rs["name"].(string) // storageLogin checked it
	// Registration of another storage unit needs a valid storage
	// registration auth. (Machines still all go to the local one.)
	saved, err := saveOrRegister(ctx, c, st, req, rs, "storage_reg",
		func(tx *sql.Tx) (*storageRow, error) { return c.store.storageByName(ctx, tx, name, true) },
		func(tx *sql.Tx, now time.Time, cur *storageRow, auth *authRow, newHash string) (*storageRow, error) {
			return c.saveStorage(ctx, tx, now, cur, name, rs, auth, newHash)
		})
	if err != nil {
		return nil, err
	}
	machines, err := listRows[machineRow](ctx, c.store.db, `SELECT `+machineCols+` FROM machines
		WHERE storage_id = ? AND active = 1 AND published = 1`, saved.ID)
	if err != nil {
		return nil, fmt.Errorf("list machines of storage %s: %w", name, err)
	}
	out := make(map[string]storageMachineJSON, len(machines))
	for _, m := range machines {
		out[m.UUID] = storageMachineJSON{EnvironmentName: m.EnvironmentName, ServiceName: m.ServiceName,
			UnitName: m.UnitName, Comment: m.Comment, SSHPublicKey: m.SSHPublicKey}
	}
	return map[string]any{"machines": out}, nil
}

// saveStorage applies storage_update_config; st is nil for a registration.
func (c *Coordinator) saveStorage(ctx context.Context, tx *sql.Tx, now time.Time, st *storageRow, name string,
	rs map[string]any, auth *authRow, newHash string) (*storageRow, error) {
	isNew := st == nil
	if isNew {
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		st = &storageRow{ID: id, Name: name, SecretHash: newHash, SSHPingHostKeys: "[]", AuthID: auth.ID,
			Active: true, Published: true, DateRegistered: now, DateUpdated: now}
	}
	_, portSet := rs["ssh_ping_port"]
	portSet = portSet || !isNew // a new row's port is None until the request sets it
	port := integer("ssh_ping_port", &st.SSHPingPort, 1, 65535)
	if isNew {
		port.same = func(any) bool { return false } // None equals no number
	}
	r := &record{
		table: "storages", cols: storageCols, row: st, isNew: isNew,
		published: &st.Published, updated: &st.DateUpdated, checkedIn: &st.DateCheckedIn,
		attrs: func(errs *fieldErrors) bool {
			modified := copyAttrs(errs, rs, []attr{
				nullChar("comment", &st.Comment, 200),
				char("ssh_ping_host", &st.SSHPingHost, 200),
				port,
				char("ssh_ping_user", &st.SSHPingUser, 200),
				integer("space_total", &st.SpaceTotal, 0, math.MaxInt32),
				integer("space_available", &st.SpaceAvailable, 0, math.MaxInt32),
			})
			// Read before compared: the stored form is the JSON list.
			if v, ok := rs["ssh_ping_host_keys"]; ok {
				text, _ := stringListField(errs, "ssh_ping_host_keys", v, 65536)
				if text != st.SSHPingHostKeys || errs.has("ssh_ping_host_keys") {
					st.SSHPingHostKeys, modified = text, true
				}
			}
			return modified
		},
		validate: func(errs *fieldErrors) (fieldErrors, bool) {
			errs.requireSet("ssh_ping_host", st.SSHPingHost)
			if !portSet {
				errs.add("ssh_ping_port", "This field cannot be null.")
			}
			errs.requireSet("ssh_ping_user", st.SSHPingUser)
			var ordered fieldErrors
			charField(&ordered, "name", name, 200, false, false)
			ordered.addFrom(errs, "comment", "ssh_ping_host", "ssh_ping_host_keys", "ssh_ping_port",
				"ssh_ping_user", "space_total", "space_available", "published")
			return ordered, true
		},
		keyCol: "name", key: name, keyTaken: "Storage with this Name already exists.",
		registered: func() { c.log.Info("storage unit registered", "storage", name) },
	}
	if err := r.save(ctx, tx, now, rs); err != nil {
		return nil, err
	}
	return st, nil
}

func (c *Coordinator) storagePingCheckin(ctx context.Context, req map[string]any) (any, error) {
	_, m, _, err := c.storageMachine(ctx, req)
	if err != nil {
		return nil, err
	}
	scheduled, err := c.checkIn(ctx, m)
	if err != nil {
		return nil, err
	}
	return map[string]any{"machine": map[string]any{
		"uuid":              m.UUID,
		"environment_name":  m.EnvironmentName,
		"service_name":      m.ServiceName,
		"unit_name":         m.UnitName,
		"scheduled_sources": scheduled,
	}}, nil
}

func (c *Coordinator) storagePingSourceUpdate(ctx context.Context, req map[string]any) (any, error) {
	st, m, rm, err := c.storageMachine(ctx, req)
	if err != nil {
		return nil, err
	}
	if _, ok := rm["sources"]; !ok {
		return nil, badRequest(`Missing required option "machine.sources"`)
	}
	reports, ok := rm["sources"].(map[string]any)
	if !ok {
		return nil, badRequest(`Invalid type for "machine.sources"`)
	}
	// Like turku-api, each report is saved on its own: an unknown source
	// answers 404 but does not undo the reports before it.
	for name, v := range reports {
		report, ok := v.(map[string]any)
		if !ok {
			return nil, badRequest(fmt.Sprintf("Invalid type for source %q", name))
		}
		if err := c.recordBackup(ctx, st, m, name, report); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}

// recordBackup saves one source report: a backup log entry, and on success
// the next due time computed from now (on failure the source stays due).
func (c *Coordinator) recordBackup(ctx context.Context, st *storageRow, m *machineRow, name string, report map[string]any) error {
	log := &backupLogRow{StorageID: &st.ID, Success: truthy(report["success"])}
	var err error
	if log.ID, err = newUUID(); err != nil {
		return err
	}
	if v, ok := report["snapshot"]; ok && v != nil {
		s := pyStr(v)
		log.Snapshot = &s
	}
	if v, ok := report["summary"]; ok && v != nil {
		s := pyStr(v)
		log.Summary = &s
	}
	for key, dst := range map[string]**time.Time{"time_begin": &log.DateBegin, "time_end": &log.DateEnd} {
		v, ok := report[key]
		if !ok {
			continue
		}
		t, err := epochTime(v)
		if err != nil {
			return badRequest(fmt.Sprintf("Invalid %s for source %q", key, name))
		}
		*dst = &t
	}
	return c.store.tx(ctx, func(tx *sql.Tx) error {
		var s sourceRow
		found, err := getRow(ctx, tx, &s, `SELECT `+sourceCols+` FROM sources
			WHERE machine_id = ? AND name = ? AND active = 1 AND published = 1`, m.ID, name)
		if err != nil {
			return fmt.Errorf("look up source %s of %s: %w", name, m.UUID, err)
		}
		if !found {
			return notFound("Source not found")
		}
		now := c.now()
		// turku-api forgets to save "success" (it is not in
		// update_fields); we keep it, it only feeds health reports.
		s.Success = log.Success
		if log.Success {
			next, err := c.nextBackup(s.Frequency, s.ID, now)
			if err != nil {
				return fmt.Errorf("schedule source %s of %s: %w", name, m.UUID, err)
			}
			s.DateLastBackedUp, s.DateNextBackup = &now, next
		}
		if err := updateRow(ctx, tx, "sources", sourceCols, &s); err != nil {
			return err
		}
		log.SourceID, log.Date = s.ID, now
		if err := insertRow(ctx, tx, "backup_logs", backupLogCols, log); err != nil {
			return err
		}
		c.log.Info("backup reported", "machine", m.UUID, "unit", m.UnitName, "source", name,
			"success", log.Success, "next", s.DateNextBackup)
		return nil
	})
}

// epochTime converts Unix epoch seconds (int or float) to a time, rounded to
// the microsecond like Python's datetime.utcfromtimestamp. (turku-api then
// tags that UTC value with its own time zone, which is only right when the
// zone is UTC; we keep the true instant.)
func epochTime(v any) (time.Time, error) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, fmt.Errorf("not a number: %v", v)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, fmt.Errorf("bad timestamp %s", n)
	}
	return time.UnixMicro(int64(math.RoundToEven(f * 1e6))).UTC(), nil
}
