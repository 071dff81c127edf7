package main

import (
	"encoding/json"
)

// writeJSON prints v as indented JSON.
func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printList prints list: as JSON with asJSON, else with table; err, if
// not nil, instead.
func printList(g *globals, list any, err error, asJSON bool, table func() error) error {
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(g, list)
	}
	return table()
}
