package config

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// What `config check` prints of a configuration that loaded.

// WriteEffective writes the effective configuration as indented JSON,
// with its secrets masked (Redacted).
func (c *Config) WriteEffective(w io.Writer) error {
	data, err := json.MarshalIndent(c.Redacted(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// WriteOrigins writes, as a table, which file or environment variable set
// each key (Origins); the other keys have their defaults.
func (c *Config) WriteOrigins(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSET BY")
	for _, k := range slices.Sorted(maps.Keys(c.Origins)) {
		fmt.Fprintf(tw, "%s\t%s\n", k, c.Origins[k])
	}
	fmt.Fprintln(tw, "(other keys)\tdefault")
	return tw.Flush()
}
