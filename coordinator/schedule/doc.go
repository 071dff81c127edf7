// Package schedule decides when a Turku source is next due for a backup.
//
// It re-implements the frequency language of turku-api
// (frequency_next_scheduled in turku_api/views.py): "hourly", "daily",
// "weekly", weekday names, "monthly", an optional ", HHMM-HHMM" or ", HHMM"
// time-of-day window, and "cron EXPR" with the Jenkins-style hashed fields of
// croniter. Every choice that turku-api makes "at random" is in fact a hash of
// the source's id, so the same source always lands on the same slot; the
// embedded coordinator uses this package and nothing else to schedule.
package schedule
