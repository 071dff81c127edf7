package coordinator

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// saveOrRegister is the update_config flow that turku-api's views.py
// follows for machines (update_config) and storage units
// (storage_update_config) alike. known is the record the login found, nil
// for one that does not exist yet: a new record is registered only with a
// valid registration auth of regType, its secret taken from obj. A known
// record is read again under the write lock (reread), and if it vanished
// meanwhile the request is refused as a bad login. save writes the record,
// cur nil meaning registration, and returns it.
func saveOrRegister[R any](ctx context.Context, c *Coordinator, known *R, req, obj map[string]any, regType string,
	reread func(tx *sql.Tx) (*R, error),
	save func(tx *sql.Tx, now time.Time, cur *R, auth *authRow, newHash string) (*R, error)) (*R, error) {
	var auth *authRow
	var newHash string
	if known == nil {
		var err error
		if auth, newHash, err = c.register(ctx, req, obj, regType); err != nil {
			return nil, err
		}
	}
	var saved *R
	err := c.store.tx(ctx, func(tx *sql.Tx) error {
		now := c.now()
		var cur *R
		if known != nil {
			var err error
			if cur, err = reread(tx); err != nil {
				return err
			}
			if cur == nil {
				return errBadAuth
			}
		}
		var err error
		saved, err = save(tx, now, cur, auth, newHash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// checkNotRegistered adds turku-api's unique-field error msg to errs when
// a registration's key (column = value) is taken already, active or not:
// a disabled machine or storage unit trying to register again.
func checkNotRegistered(ctx context.Context, tx *sql.Tx, errs *fieldErrors, table, column, value, msg string) error {
	exists, err := rowExists(ctx, tx, table, column, value)
	if err != nil {
		return fmt.Errorf("check %s %s: %w", table, column, err)
	}
	if exists {
		errs.add(column, msg)
	}
	return nil
}

// register checks a registration auth of secretType and hashes the new
// machine's or storage unit's secret from obj.
func (c *Coordinator) register(ctx context.Context, req, obj map[string]any, secretType string) (*authRow, string, error) {
	auth, err := c.registrationAuth(ctx, req, secretType)
	if err != nil {
		return nil, "", err
	}
	secret, ok := obj["secret"].(string)
	if !ok {
		return nil, "", badRequest(`Invalid type for "secret"`)
	}
	hash, err := c.store.secrets.hash(secret)
	if err != nil {
		return nil, "", err
	}
	return auth, hash, nil
}

// record is one machine or storage unit as update_config and
// storage_update_config save it. The flow is turku-api's views.py for
// both: "published" left out means the sender wants to be published; the
// kind's own attributes are copied; only when something changed are the
// remaining full_clean checks run, a registration's key checked for
// uniqueness and date_updated set; date_checked_in is set on every call.
type record struct {
	table, cols string
	row         row
	isNew       bool
	// published, updated and checkedIn point into row.
	published *bool
	updated   *time.Time
	checkedIn **time.Time
	// attrs copies the kind's own attributes from the request into row,
	// adding field errors to errs, and reports whether any changed.
	attrs func(errs *fieldErrors) bool
	// validate runs the kind's remaining field checks and returns every
	// error in turku-api's order, and whether the key is worth checking
	// for uniqueness (a malformed one is not).
	validate func(errs *fieldErrors) (ordered fieldErrors, checkUnique bool)
	// keyCol and key are the registration key, keyTaken turku-api's
	// message when another record has it.
	keyCol, key, keyTaken string
	// registered logs a registration.
	registered func()
}

// save applies obj (the request's "machine" or "storage" object) to the
// record and writes it.
func (r *record) save(ctx context.Context, tx *sql.Tx, now time.Time, obj map[string]any) error {
	var errs fieldErrors
	modified := r.isNew
	if v, ok := obj["published"]; ok {
		if !pyEq(v, *r.published) {
			*r.published, modified = boolField(&errs, "published", v), true
		}
	} else if !*r.published {
		*r.published, modified = true, true
	}
	if r.attrs(&errs) {
		modified = true
	}
	if modified {
		*r.updated = now
		ordered, checkUnique := r.validate(&errs)
		if r.isNew && checkUnique {
			if err := checkNotRegistered(ctx, tx, &ordered, r.table, r.keyCol, r.key, r.keyTaken); err != nil {
				return err
			}
		}
		if err := ordered.err(); err != nil {
			return err
		}
	}
	*r.checkedIn = &now
	if err := saveRow(ctx, tx, r.table, r.cols, r.row, r.isNew); err != nil {
		return err
	}
	if r.isNew {
		r.registered()
	}
	return nil
}

// attr is one attribute of a machine or storage unit that update_config
// copies from the request when it differs from the row.
type attr struct {
	key string
	// same reports whether the request's value equals the row's (pyEq).
	same func(v any) bool
	// set checks v, adding field errors, and stores it in the row.
	set func(errs *fieldErrors, v any)
}

// copyAttrs copies each of attrs that obj has and that differs from the
// row, and reports whether any did.
func copyAttrs(errs *fieldErrors, obj map[string]any, attrs []attr) bool {
	modified := false
	for _, a := range attrs {
		if v, ok := obj[a.key]; ok && !a.same(v) {
			a.set(errs, v)
			modified = true
		}
	}
	return modified
}

// nullChar is a CharField with null=True, blank=True (turku-api's models).
func nullChar(key string, p **string, maxLen int) attr {
	return attr{key, func(v any) bool { return pyEq(v, *p) },
		func(errs *fieldErrors, v any) { *p = charField(errs, key, v, maxLen, true, true) }}
}

// char is a CharField that is required.
func char(key string, p *string, maxLen int) attr {
	return attr{key, func(v any) bool { return pyEq(v, *p) },
		func(errs *fieldErrors, v any) { *p = deref(charField(errs, key, v, maxLen, false, false)) }}
}

// integer is an IntegerField between lo and hi.
func integer(key string, p *int64, lo, hi int64) attr {
	return attr{key, func(v any) bool { return pyEq(v, *p) },
		func(errs *fieldErrors, v any) { *p = intField(errs, key, v, lo, hi) }}
}
