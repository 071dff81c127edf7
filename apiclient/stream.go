package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// streamDecoder is a reply decoded as it arrives rather than read whole
// first: call hands it the body of a 200 reply.
type streamDecoder interface {
	decodeStream(r io.Reader) error
}

// readErrors remembers the first error reading the reply other than its
// end, so that a connection lost or a call timed out mid-reply is told
// apart from a malformed reply.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// errEntryTooLarge is an entry of a streamed reply over machineEntryLimit.
var errEntryTooLarge = errors.New("entry too large")

// entryWindow lets a json.Decoder read at most limit bytes of the reply
// in all; the decoder moves limit on before each entry, so it never holds
// more than one entry's limit of unread reply.
type entryWindow struct {
	r     io.Reader
	read  int64 // bytes handed to the decoder
	limit int64 // it may not read past this offset
}

func (w *entryWindow) Read(p []byte) (int, error) {
	if w.read >= w.limit {
		return 0, errEntryTooLarge
	}
	if room := w.limit - w.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := w.r.Read(p)
	w.read += int64(n)
	return n, err
}

// decodeStream decodes storage_update_config's reply, {"machines": {UUID:
// {...}, ...}}, one machine at a time: memory grows with the machines
// kept, never with the reply held whole. Members other than "machines"
// are skipped (each within the entry limit); the reply must be one JSON
// object, as json.Unmarshal would insist.
func (u *UpdateConfigResponse) decodeStream(r io.Reader) error {
	err := u.decodeObject(r)
	if err == io.EOF {
		// The reply ended inside the object.
		return io.ErrUnexpectedEOF
	}
	return err
}

func (u *UpdateConfigResponse) decodeObject(r io.Reader) error {
	w := &entryWindow{r: r, limit: machineEntryLimit}
	dec := json.NewDecoder(w)
	next := func() { w.limit = dec.InputOffset() + machineEntryLimit }
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for next(); dec.More(); next() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if key != "machines" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := u.decodeMachines(dec, next); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	// Nothing but white space may follow the object.
	switch tok, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("data after the reply object: %v", tok)
	}
}

// decodeMachines decodes the "machines" member's value: an object of
// machines, or null (which leaves Machines nil, as json.Unmarshal does).
func (u *UpdateConfigResponse) decodeMachines(dec *json.Decoder, next func()) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		u.Machines = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf(`"machines" is %v, not an object`, tok)
	}
	if u.Machines == nil {
		u.Machines = map[string]MachineInfo{}
	}
	for next(); dec.More(); next() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		uuid, _ := tok.(string)
		var m MachineInfo
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("machine %q: %w", uuid, err)
		}
		u.Machines[uuid] = m
	}
	return expectDelim(dec, '}')
}

// expectDelim reads the next token and insists it is d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("got %v, want %q", tok, rune(d))
	}
	return nil
}
