package coordinator

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/coordinator/schedule"
)

// The agent-facing calls, as turku-api's views.py answers them.

// machineLogin authenticates the machine of an agent request. For
// update_config an unknown (or disabled) machine is not an error: it returns
// nil so the caller can try registration.
func (c *Coordinator) machineLogin(ctx context.Context, req map[string]any, isUpdateConfig bool) (*machineRow, string, error) {
	rm, ok := object(req, "machine")
	if !ok {
		return nil, "", badRequest(`"machine" dict required`)
	}
	for _, k := range []string{"uuid", "secret"} {
		if _, ok := rm[k]; !ok {
			return nil, "", badRequest(fmt.Sprintf("Missing required machine option %q", k))
		}
	}
	u, err := parseUUID(rm["uuid"])
	if err != nil {
		// turku-api lets uuid.UUID's ValueError escape (500).
		return nil, "", badRequest("Invalid machine UUID")
	}
	uuid := formatUUID(u)
	m, err := c.store.machineByUUID(ctx, c.store.db, uuid, true)
	if err != nil {
		return nil, "", err
	}
	if m == nil {
		if isUpdateConfig {
			return nil, uuid, nil
		}
		return nil, "", c.refuseUnknown(rm["secret"])
	}
	if !isUpdateConfig && !m.Published {
		return nil, "", c.refuseUnknown(rm["secret"])
	}
	secret, ok := rm["secret"].(string)
	if !ok {
		return nil, "", c.refuseUnknown(rm["secret"])
	}
	if err := c.checkSecret(secret, m.SecretHash); err != nil {
		return nil, "", err
	}
	return m, uuid, nil
}

// checkSecret answers a request's secret: nil when it matches the stored
// hash, errBadAuth when not, errBusy when it cannot be checked now.
func (c *Coordinator) checkSecret(secret, hash string) error {
	ok, err := c.store.secrets.tryVerify(secret, hash)
	if err != nil {
		return errBusy
	}
	if !ok {
		return errBadAuth
	}
	return nil
}

// refuseUnknown answers a login for a record that does not exist (or may
// not log in, or sent a secret that is not a string) as a wrong secret
// for one that does would be answered at this moment: after the same
// argon2 work on secret, errBusy while the verification slots are full,
// else errBadAuth. So neither the answer nor the time it takes tells
// which UUIDs and names exist.
func (c *Coordinator) refuseUnknown(secret any) error {
	s, _ := secret.(string)
	if err := c.store.secrets.tryVerifyNone(s); err != nil {
		return errBusy
	}
	return errBadAuth
}

// registrationAuth checks the request's "auth" {name, secret} against an
// active registration auth of the given type.
func (c *Coordinator) registrationAuth(ctx context.Context, req map[string]any, secretType string) (*authRow, error) {
	ra, _ := object(req, "auth")
	name, _ := ra["name"].(string)
	secret, _ := ra["secret"].(string)
	if name == "" || secret == "" {
		return nil, c.refuseUnknown(secret)
	}
	a, err := c.store.authByName(ctx, c.store.db, name)
	if err != nil {
		return nil, err
	}
	if a == nil || !a.Active || a.SecretType != secretType {
		return nil, c.refuseUnknown(secret)
	}
	if err := c.checkSecret(secret, a.SecretHash); err != nil {
		return nil, err
	}
	return a, nil
}

// sourceCharFields and sourceBoolFields are the source attributes
// update_config copies (filter and exclude are handled apart).
var (
	sourceCharFields = []string{"path", "frequency", "retention", "comment", "bwlimit", "snapshot_mode"}
	sourceBoolFields = []string{"shared_service", "large_rotating_files", "large_modifying_files", "preserve_hard_links"}
)

func (c *Coordinator) updateConfig(ctx context.Context, req map[string]any) (any, error) {
	m, uuid, err := c.machineLogin(ctx, req, true)
	if err != nil {
		return nil, err
	}
	rm, _ := object(req, "machine")
	_, err = saveOrRegister(ctx, c, m, req, rm, "machine_reg",
		func(tx *sql.Tx) (*machineRow, error) { return c.store.machineByUUID(ctx, tx, uuid, true) },
		func(tx *sql.Tx, now time.Time, cur *machineRow, auth *authRow, newHash string) (*machineRow, error) {
			rs, hasSources := rm["sources"]
			reqSources, ok := rs.(map[string]any)
			if hasSources && !ok {
				return nil, badRequest(`Invalid type for "sources"`)
			}
			saved, err := c.saveMachine(ctx, tx, now, cur, uuid, rm, auth, newHash)
			if err != nil {
				return nil, err
			}
			return saved, c.saveSources(ctx, tx, now, saved, reqSources)
		})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// saveMachine applies the machine part of update_config; m is nil for a
// registration.
func (c *Coordinator) saveMachine(ctx context.Context, tx *sql.Tx, now time.Time, m *machineRow, uuid string,
	rm map[string]any, auth *authRow, newHash string) (*machineRow, error) {
	isNew := m == nil
	if isNew {
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		m = &machineRow{ID: id, UUID: uuid, SecretHash: newHash, AuthID: auth.ID, Active: true,
			Published: true, DateRegistered: now, DateUpdated: now}
		// Machines go to the local storage unit, if it is taking any
		// (turku-api: a random active, published storage, else 404).
		st, err := c.store.storageByName(ctx, tx, c.storageName, true)
		if err != nil {
			return nil, err
		}
		if st == nil || !st.Published {
			return nil, notFound("No storages are currently available")
		}
		m.StorageID = st.ID
	}
	r := &record{
		table: "machines", cols: machineCols, row: m, isNew: isNew,
		published: &m.Published, updated: &m.DateUpdated, checkedIn: &m.DateCheckedIn,
		attrs: func(errs *fieldErrors) bool {
			return copyAttrs(errs, rm, []attr{
				nullChar("environment_name", &m.EnvironmentName, 200),
				nullChar("service_name", &m.ServiceName, 200),
				char("unit_name", &m.UnitName, 200),
				nullChar("comment", &m.Comment, 200),
				char("ssh_public_key", &m.SSHPublicKey, 2048),
			})
		},
		validate: func(errs *fieldErrors) (fieldErrors, bool) {
			var ordered fieldErrors
			u, _ := parseUUID(m.UUID)
			if !plausibleUUID(u) {
				ordered.add("uuid", "Invalid UUID format")
			}
			// Required fields the request never set are blank.
			errs.requireSet("unit_name", m.UnitName)
			errs.requireSet("ssh_public_key", m.SSHPublicKey)
			ordered.addFrom(errs, "environment_name", "service_name", "unit_name", "comment", "ssh_public_key", "published")
			return ordered, !ordered.has("uuid")
		},
		keyCol: "uuid", key: m.UUID, keyTaken: "Machine with this UUID already exists.",
		registered: func() { c.log.Info("machine registered", "machine", m.UUID, "unit", m.UnitName) },
	}
	if err := r.save(ctx, tx, now, rm); err != nil {
		return nil, err
	}
	return m, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// saveSources applies the sources part of update_config: known sources are
// updated (and republished), those missing from the request unpublished,
// new ones created and scheduled.
func (c *Coordinator) saveSources(ctx context.Context, tx *sql.Tx, now time.Time, m *machineRow, req map[string]any) error {
	existing, err := listRows[sourceRow](ctx, tx, `SELECT `+sourceCols+` FROM sources WHERE machine_id = ?`, m.ID)
	if err != nil {
		return fmt.Errorf("list sources of %s: %w", m.UUID, err)
	}
	seen := make(map[string]bool)
	for i := range existing {
		s := &existing[i]
		rs, ok := req[s.Name]
		if !ok {
			if s.Published {
				s.Published = false
				if err := updateRow(ctx, tx, "sources", sourceCols, s); err != nil {
					return err
				}
				c.log.Info("source unpublished", "machine", m.UUID, "source", s.Name)
			}
			continue
		}
		seen[s.Name] = true
		if err := c.applySource(ctx, tx, now, s, rs, false); err != nil {
			return err
		}
	}
	for name, rs := range req {
		if seen[name] {
			continue
		}
		id, err := newUUID()
		if err != nil {
			return err
		}
		s := &sourceRow{ID: id, Name: name, MachineID: m.ID, Filter: "[]", Exclude: "[]",
			Frequency: "daily", Retention: "last 5 days, earliest of month", Active: true,
			Success: true, Published: true, DateAdded: now, DateUpdated: now}
		if err := c.applySource(ctx, tx, now, s, rs, true); err != nil {
			return err
		}
		c.log.Info("source added", "machine", m.UUID, "source", name, "next", s.DateNextBackup)
	}
	return nil
}

// applySource copies one source's request attributes into s, validates and
// saves it.
func (c *Coordinator) applySource(ctx context.Context, tx *sql.Tx, now time.Time, s *sourceRow, v any, isNew bool) error {
	rs, ok := v.(map[string]any)
	if !ok {
		return badRequest(fmt.Sprintf("Invalid type for source %q", s.Name))
	}
	var errs fieldErrors
	modified := isNew
	frequencyChanged := false
	for _, k := range sourceCharFields {
		raw, ok := rs[k]
		if !ok {
			continue
		}
		var cur any
		switch k {
		case "path":
			cur = s.Path
		case "frequency":
			cur = s.Frequency
		case "retention":
			cur = s.Retention
		case "comment":
			cur = s.Comment
		case "bwlimit":
			cur = s.Bwlimit
		case "snapshot_mode":
			cur = s.SnapshotMode
		}
		if !isNew && pyEq(raw, cur) {
			continue
		}
		modified = true
		switch k {
		case "path":
			s.Path = deref(charField(&errs, k, raw, 200, false, false))
		case "frequency":
			s.Frequency = deref(charField(&errs, k, raw, 200, false, false))
			frequencyChanged = true
		case "retention":
			s.Retention = deref(charField(&errs, k, raw, 200, false, false))
		case "comment":
			s.Comment = charField(&errs, k, raw, 200, true, true)
		case "bwlimit":
			s.Bwlimit = charField(&errs, k, raw, 200, true, true)
		case "snapshot_mode":
			s.SnapshotMode = choiceField(&errs, k, raw, 200, "none", "link-dest")
		}
	}
	for _, k := range sourceBoolFields {
		raw, ok := rs[k]
		if !ok {
			continue
		}
		field := map[string]*bool{
			"shared_service":        &s.SharedService,
			"large_rotating_files":  &s.LargeRotatingFiles,
			"large_modifying_files": &s.LargeModifyingFiles,
			"preserve_hard_links":   &s.PreserveHardLinks,
		}[k]
		if !isNew && pyEq(raw, *field) {
			continue
		}
		modified = true
		*field = boolField(&errs, k, raw)
	}
	for _, k := range []string{"filter", "exclude"} {
		raw, ok := rs[k]
		if !ok {
			continue
		}
		text, _ := stringListField(&errs, k, raw, 2048)
		field := &s.Filter
		if k == "exclude" {
			field = &s.Exclude
		}
		if text != *field || errs.has(k) {
			*field, modified = text, true
		}
	}
	if !s.Published {
		s.Published, modified = true, true
	}
	if !modified {
		return nil
	}
	// Schedule before validating, as turku-api does: a new source always,
	// a known one when its frequency changed.
	if isNew || frequencyChanged {
		if !errs.has("frequency") {
			next, err := c.nextBackup(s.Frequency, s.ID, now)
			if err != nil {
				return badRequest(fmt.Sprintf("Validation error: {'frequency': [%s]}", pyRepr(err.Error())))
			}
			s.DateNextBackup = next
		}
	}
	s.DateUpdated = now
	// Defaults that are blank fail too (a new source without a path).
	errs.requireSet("path", s.Path)
	var ordered fieldErrors
	charField(&ordered, "name", s.Name, 200, false, false)
	ordered.addFrom(&errs, "comment", "path", "filter", "exclude", "frequency", "retention", "bwlimit",
		"snapshot_mode", "preserve_hard_links", "shared_service", "large_rotating_files", "large_modifying_files")
	if err := ordered.err(); err != nil {
		return err
	}
	return saveRow(ctx, tx, "sources", sourceCols, s, isNew)
}

// nextBackup is frequency_next_scheduled(frequency, str(source.id), now).
func (c *Coordinator) nextBackup(frequency, sourceID string, now time.Time) (time.Time, error) {
	f, err := schedule.Parse(frequency)
	if err != nil {
		return time.Time{}, err
	}
	next, err := f.Next(now, c.loc, sourceID)
	if err != nil {
		return time.Time{}, err
	}
	return next.UTC(), nil
}

// sourceJSON is one entry of scheduled_sources / sources.
type sourceJSON struct {
	Path                string      `json:"path"`
	Retention           string      `json:"retention"`
	Bwlimit             *string     `json:"bwlimit"`
	Filter              []string    `json:"filter"`
	Exclude             []string    `json:"exclude"`
	SharedService       bool        `json:"shared_service"`
	LargeRotatingFiles  bool        `json:"large_rotating_files"`
	LargeModifyingFiles bool        `json:"large_modifying_files"`
	SnapshotMode        *string     `json:"snapshot_mode"`
	PreserveHardLinks   bool        `json:"preserve_hard_links"`
	Storage             storageJSON `json:"storage"`
}

type storageJSON struct {
	Name            string   `json:"name"`
	SSHPingHost     string   `json:"ssh_ping_host"`
	SSHPingHostKeys []string `json:"ssh_ping_host_keys"`
	SSHPingPort     int64    `json:"ssh_ping_port"`
	SSHPingUser     string   `json:"ssh_ping_user"`
}

// filterVerbs are the rsync filter rule verbs turku-api passes through
// (build_filters); "merge" and "." name a turku-api FilterSet, which the
// embedded coordinator does not have, so like unknown sets they are
// dropped. A rule without a space is dropped too.
var filterVerbs = map[string]bool{
	"dir-merge": true, ":": true, "clear": true, "!": true, "exclude": true, "-": true,
	"include": true, "+": true, "hide": true, "H": true, "show": true, "S": true,
	"protect": true, "P": true, "risk": true, "R": true,
}

func buildFilters(rules []string) []string {
	out := []string{}
	for _, r := range rules {
		verb, _, ok := strings.Cut(r, " ")
		if ok && filterVerbs[verb] {
			out = append(out, r)
		}
	}
	return out
}

// sourceEntries lists a machine's sources matching the SQL condition, in the
// shape turku-api gives agents and storage units.
func (c *Coordinator) sourceEntries(ctx context.Context, m *machineRow, cond string, args ...any) (map[string]sourceJSON, error) {
	var st storageRow
	found, err := getRow(ctx, c.store.db, &st, `SELECT `+storageCols+` FROM storages WHERE id = ?`, m.StorageID)
	if err != nil {
		return nil, fmt.Errorf("look up storage of %s: %w", m.UUID, err)
	}
	if !found {
		return nil, fmt.Errorf("machine %s: storage %s missing", m.UUID, m.StorageID)
	}
	sources, err := listRows[sourceRow](ctx, c.store.db,
		`SELECT `+sourceCols+` FROM sources WHERE machine_id = ? AND `+cond+` ORDER BY name`,
		append([]any{m.ID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("list sources of %s: %w", m.UUID, err)
	}
	out := make(map[string]sourceJSON, len(sources))
	for _, s := range sources {
		out[s.Name] = sourceJSON{
			Path: s.Path, Retention: s.Retention, Bwlimit: s.Bwlimit,
			Filter: buildFilters(decodeStringList(s.Filter)), Exclude: decodeStringList(s.Exclude),
			SharedService: s.SharedService, LargeRotatingFiles: s.LargeRotatingFiles,
			LargeModifyingFiles: s.LargeModifyingFiles, SnapshotMode: s.SnapshotMode,
			PreserveHardLinks: s.PreserveHardLinks,
			Storage: storageJSON{Name: st.Name, SSHPingHost: st.SSHPingHost,
				SSHPingHostKeys: decodeStringList(st.SSHPingHostKeys), SSHPingPort: st.SSHPingPort,
				SSHPingUser: st.SSHPingUser},
		}
	}
	return out, nil
}

// scheduledSources are the sources due now: active, published and with
// date_next_backup at or before now.
func (c *Coordinator) scheduledSources(ctx context.Context, m *machineRow, now time.Time) (map[string]sourceJSON, error) {
	return c.sourceEntries(ctx, m, `active = 1 AND published = 1 AND date_next_backup <= ?`, dbTime(now))
}

// checkIn records that m checked in now and returns the sources due, as
// the agent's and the storage unit's check-in both do.
func (c *Coordinator) checkIn(ctx context.Context, m *machineRow) (map[string]sourceJSON, error) {
	now := c.now()
	scheduled, err := c.scheduledSources(ctx, m, now)
	if err != nil {
		return nil, err
	}
	if _, err := c.store.db.ExecContext(ctx, `UPDATE machines SET date_checked_in = ? WHERE id = ?`, dbTime(now), m.ID); err != nil {
		return nil, fmt.Errorf("record check-in of %s: %w", m.UUID, err)
	}
	return scheduled, nil
}

func (c *Coordinator) agentPingCheckin(ctx context.Context, req map[string]any) (any, error) {
	m, _, err := c.machineLogin(ctx, req, false)
	if err != nil {
		return nil, err
	}
	scheduled, err := c.checkIn(ctx, m)
	if err != nil {
		return nil, err
	}
	return map[string]any{"machine": map[string]any{"scheduled_sources": scheduled}}, nil
}

func (c *Coordinator) agentPingRestore(ctx context.Context, req map[string]any) (any, error) {
	m, _, err := c.machineLogin(ctx, req, false)
	if err != nil {
		return nil, err
	}
	// Every active source, published or not, as turku-api lists them.
	sources, err := c.sourceEntries(ctx, m, `active = 1`)
	if err != nil {
		return nil, err
	}
	return map[string]any{"machine": map[string]any{"sources": sources}}, nil
}

func (c *Coordinator) health(ctx context.Context, _ map[string]any) (any, error) {
	counts := map[string]int{"filter_set": 0}
	for key, table := range map[string]string{"auth": "auths", "storage": "storages", "machine": "machines",
		"source": "sources", "backup_log": "backup_logs"} {
		var n int
		if err := c.store.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		counts[key] = n
	}
	return map[string]any{"healthy": true, "date": pyISOFormat(c.now().In(c.loc)), "counts": counts}, nil
}

// pyISOFormat is Python's datetime.isoformat() of an aware datetime.
func pyISOFormat(t time.Time) string {
	if t.Nanosecond()/1000 != 0 {
		return t.Format("2006-01-02T15:04:05.000000-07:00")
	}
	return t.Format("2006-01-02T15:04:05-07:00")
}
