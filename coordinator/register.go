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
