package config

import (
	"strconv"
	"strings"
	"time"
)

// orphans reads orphan_warn_after and orphan_expiry into c: orphans are
// machines with data here that turku-api no longer assigns to this
// storage unit (docs/operations.md, "Several storage units").
func (r *reader) orphans(c *Config) {
	c.OrphanWarnAfter = r.longDuration("orphan_warn_after")
	if r.v.IsSet("orphan_expiry") {
		c.OrphanExpiry = r.longDuration("orphan_expiry")
		if c.OrphanExpiry > 0 && c.OrphanExpiry < 24*time.Hour {
			r.fail("orphan_expiry", "%s is less than a day: a machine moved back and forth would lose its backups", c.OrphanExpiry)
		}
	}
}

// longDuration is duration that also takes whole days, "14d".
func (r *reader) longDuration(key string) time.Duration {
	if s, ok := r.v.Get(key).(string); ok {
		if days, found := strings.CutSuffix(strings.TrimSpace(s), "d"); found {
			n, err := strconv.ParseInt(days, 10, 32)
			if err != nil || n <= 0 || n > 36500 {
				r.fail(key, "want a number of days like \"14d\" (1..36500) or a duration like \"336h\", got %q", s)
				return 0
			}
			return time.Duration(n) * 24 * time.Hour
		}
	}
	return r.duration(key)
}
