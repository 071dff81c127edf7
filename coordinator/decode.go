package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxDepth bounds the nesting of a request. The deepest legitimate value
// is a filter rule: {"machine": {"sources": {NAME: {"filter": [RULE]}}}},
// depth 5; a source's own keys come from the agent's sources.d as the
// operator wrote them, so leave room for a little more.
const maxDepth = 8

// maxValues bounds the number of values in a request, which is what
// decoding it into maps costs (about 100 bytes each): a 64 KiB body of
// tiny values would otherwise cost several MiB. A hundred sources with
// their filter rules are a few thousand.
const maxValues = 8192

// fields is the shape a call accepts: the keys allowed in the request
// object and, for keys holding an object, the keys allowed in it. A nil
// fields for a key allows anything there (bounded by maxDepth and the
// call's body limit): the sources an agent sends are its operator's
// sources.d files, passed through unchanged, as turku-api accepts them.
type fields map[string]fields

var (
	agentMachineKeys = fields{"uuid": nil, "secret": nil}
	authKeys         = fields{"name": nil, "secret": nil}
	storageAuthKeys  = fields{"name": nil, "secret": nil}
	storageKeys      = fields{"name": nil, "secret": nil, "comment": nil, "ssh_ping_host": nil,
		"ssh_ping_port": nil, "ssh_ping_user": nil, "ssh_ping_host_keys": nil, "space_total": nil,
		"space_available": nil, "published": nil}
)

// decodeRequest reads one JSON object of at most limit bytes, checks its
// depth and its keys against want, and returns it. Numbers stay
// json.Number so that integers and floats convert as Python would. A body
// over the limit is an *http.MaxBytesError from r, or errTooLarge.
func decodeRequest(r io.Reader, want fields) (map[string]any, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := checkStructure(body); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: extra data after the object")
	}
	req, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("invalid JSON: expected an object")
	}
	if want != nil {
		if err := checkFields(req, want, ""); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// checkStructure refuses JSON nested deeper than maxDepth, or holding more
// than about maxValues values, before anything is built from it. Strings
// are skipped so brackets and commas in them do not count; malformed JSON
// is left for the decoder to name.
func checkStructure(body []byte) error {
	depth, values := 0, 0
	inString, escaped := false, false
	for _, b := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == ',':
			values++
		case b == '{' || b == '[':
			values++
			if depth++; depth > maxDepth {
				return fmt.Errorf("invalid JSON: nested deeper than %d levels", maxDepth)
			}
		case b == '}' || b == ']':
			depth--
		}
		if values > maxValues {
			return fmt.Errorf("invalid JSON: more than %d values", maxValues)
		}
	}
	return nil
}

// checkFields refuses keys a call does not take, naming the first one (in
// sorted order, so the answer does not depend on map order).
func checkFields(obj map[string]any, want fields, prefix string) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sub, known := want[k]
		if !known {
			return fmt.Errorf("Unknown field %q", prefix+k)
		}
		if o, isObj := obj[k].(map[string]any); isObj && sub != nil {
			if err := checkFields(o, sub, prefix+k+"."); err != nil {
				return err
			}
		}
	}
	return nil
}
