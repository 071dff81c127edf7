package contract

import (
	"net/http"
	"testing"
)

// A case is set up on a fresh backend holding machine web1 (machineUUID)
// with its source "etc", not due. setup may return a registration auth
// for the steps.
type contractCase struct {
	name  string
	setup func(t *testing.T, b Backend) (reg obj)
	steps func(auth, reg obj) []step
}

// some marks an object of which only the listed keys are compared.
const some = "..."

// etcSource is the due source as the storage unit gets it; the rest of
// the entry (retention, filters, the storage block) may differ.
var etcSource = obj{"path": "/etc", some: true}

func checkin(auth obj, uuid any) obj {
	return obj{"storage": auth, "machine": obj{"uuid": uuid}}
}

func report(auth obj, sources obj) obj {
	return obj{"storage": auth, "machine": obj{"uuid": machineUUID, "sources": sources}}
}

func checkinReply(sources obj) obj {
	return obj{"machine": obj{"uuid": machineUUID, "environment_name": nil, "service_name": nil,
		"unit_name": "web1", "scheduled_sources": sources}}
}

func wrong(auth obj) obj { return obj{"name": auth["name"], "secret": "wrong"} }

// request is a well-formed body for call, as storage unit storage, about
// the machine uuid (nil: no machine).
func request(call string, storage any, uuid any) obj {
	body := obj{"storage": storage}
	switch {
	case call == "storage_update_config" || uuid == nil:
	case call == "storage_ping_source_update":
		body["machine"] = obj{"uuid": uuid, "sources": obj{}}
	default:
		body["machine"] = obj{"uuid": uuid}
	}
	return body
}

func cases() []contractCase {
	const (
		badAuth   = "Bad auth"
		noStorage = `Missing required option "storage"`
		noMachine = `Missing required option "machine"`
		noUUID    = `Missing required option "machine.uuid"`
		noSources = `Missing required option "machine.sources"`
	)
	return []contractCase{
		{name: "transport", steps: func(auth, _ obj) []step {
			return []step{
				{name: "GET", method: http.MethodGet, call: "storage_ping_checkin", wantCode: 405},
				{name: "no content type", contentType: "-", call: "storage_ping_checkin", body: checkin(auth, machineUUID),
					wantCode: 400, wantText: "Bad Content-Type (expected application/json)"},
				{name: "charset", contentType: "application/json; charset=utf-8", call: "storage_ping_checkin",
					body: checkin(auth, machineUUID), wantCode: 400, wantText: "Bad Content-Type (expected application/json)"},
				{name: "bad JSON", call: "storage_ping_checkin", body: "{", wantCode: 400, anyText: true},
				{name: "unknown call", call: "storage_nothing", body: obj{}, wantCode: 404, anyText: true},
			}
		}},
		{name: "storage auth", steps: func(auth, _ obj) []step {
			var out []step
			for _, call := range []string{"storage_update_config", "storage_ping_checkin", "storage_ping_source_update"} {
				out = append(out,
					step{name: "wrong secret", call: call, body: request(call, wrong(auth), machineUUID), wantCode: 403, wantText: badAuth},
					step{name: "unknown storage", call: call, body: request(call, obj{"name": "nobody", "secret": "x"}, machineUUID),
						wantCode: 403, wantText: badAuth},
					step{name: "no secret", call: call, body: request(call, obj{"name": auth["name"]}, machineUUID), wantCode: 403, wantText: badAuth},
					step{name: "no name", call: call, body: request(call, obj{"secret": auth["secret"]}, machineUUID), wantCode: 403, wantText: badAuth},
					// turku-api tests `"name" in storage`: on a string that is a
					// substring test, which fails.
					step{name: "storage a string", call: call, body: request(call, "primary", machineUUID), wantCode: 403, wantText: badAuth},
					step{name: "no storage", call: call, body: obj{}, wantCode: 400, wantText: noStorage},
				)
			}
			return out
		}},
		{name: "storage_update_config", steps: func(auth, _ obj) []step {
			withSpace := func(k string, v any) obj {
				return obj{"storage": obj{"name": auth["name"], "secret": auth["secret"], k: v}}
			}
			return []step{
				{name: "refresh", call: "storage_update_config", body: obj{"storage": auth}, wantCode: 200,
					wantJSON: obj{"machines": obj{machineUUID: obj{"unit_name": "web1", "ssh_public_key": machineKey,
						"environment_name": nil, "service_name": nil, "comment": nil}}}},
				{name: "space not a number", call: "storage_update_config", body: withSpace("space_total", "lots"), wantCode: 400,
					wantText: "Validation error: {'space_total': ['“lots” value must be an integer.']}"},
				{name: "negative space", call: "storage_update_config", body: withSpace("space_available", -1), wantCode: 400,
					wantText: "Validation error: {'space_available': ['Ensure this value is greater than or equal to 0.']}"},
				{name: "space over 32 bits", call: "storage_update_config", body: withSpace("space_total", int64(1)<<31), wantCode: 400,
					wantText: "Validation error: {'space_total': ['Ensure this value is less than or equal to 2147483647.']}"},
				{name: "port out of range", call: "storage_update_config", body: withSpace("ssh_ping_port", 0), wantCode: 400,
					wantText: "Validation error: {'ssh_ping_port': ['Ensure this value is greater than or equal to 1.']}"},
				{name: "fractional space truncates", call: "storage_update_config", body: withSpace("space_total", 10.5), wantCode: 200,
					wantJSON: obj{"machines": obj{machineUUID: obj{some: true}}}},
				// Draining: an unpublished unit gets no new machines, but keeps
				// (and is still told of) those it has.
				{name: "unpublished keeps its machines", call: "storage_update_config", body: withSpace("published", false), wantCode: 200,
					wantJSON: obj{"machines": obj{machineUUID: obj{some: true}}}},
				{name: "published not a boolean", call: "storage_update_config", body: withSpace("published", "maybe"), wantCode: 400,
					wantText: "Validation error: {'published': ['“maybe” value must be either True or False.']}"},
				{name: "unknown storage without registration auth", call: "storage_update_config",
					body: obj{"storage": obj{"name": "second", "secret": "s2", "ssh_ping_host": "second.example.com",
						"ssh_ping_port": 22, "ssh_ping_user": "root"}}, wantCode: 403, wantText: badAuth},
			}
		}},
		{name: "machine lookup", setup: func(t *testing.T, b Backend) obj { b.AddStorage(t, "second", "s2"); return nil },
			steps: func(auth, _ obj) []step {
				second := obj{"name": "second", "secret": "s2"}
				var out []step
				for _, call := range []string{"storage_ping_checkin", "storage_ping_source_update"} {
					out = append(out,
						step{name: "no machine", call: call, body: obj{"storage": auth}, wantCode: 400, wantText: noMachine},
						step{name: "no uuid", call: call, body: obj{"storage": auth, "machine": obj{}}, wantCode: 400, wantText: noUUID},
						// `"uuid" in machine` on a string is a substring test.
						step{name: "machine a string", call: call, body: obj{"storage": auth, "machine": "web1"}, wantCode: 400, wantText: noUUID},
						step{name: "unknown machine", call: call, body: request(call, auth, otherUUID),
							wantCode: 404, wantText: "Machine not found"},
						step{name: "machine of another storage unit", call: call, body: request(call, second, machineUUID),
							wantCode: 404, wantText: "Machine not found"},
					)
				}
				return out
			}},
		{name: "storage registration", setup: func(t *testing.T, b Backend) obj {
			name, secret := b.AddRegistrationAuth(t)
			return obj{"name": name, "secret": secret}
		}, steps: func(auth, reg obj) []step {
			third := obj{"name": "third", "secret": "s3", "ssh_ping_host": "third.example.com",
				"ssh_ping_port": 22, "ssh_ping_user": "root"}
			bare := obj{"name": "third", "secret": "s3"}
			return []step{
				{name: "wrong registration secret", call: "storage_update_config",
					body: obj{"storage": third, "auth": obj{"name": reg["name"], "secret": "wrong"}}, wantCode: 403, wantText: badAuth},
				{name: "registration without auth", call: "storage_update_config", body: obj{"storage": third},
					wantCode: 403, wantText: badAuth},
				{name: "registration without SSH details", call: "storage_update_config", body: obj{"storage": bare, "auth": reg},
					wantCode: 400, wantText: "Validation error: {'ssh_ping_host': ['This field cannot be blank.'], " +
						"'ssh_ping_port': ['This field cannot be null.'], 'ssh_ping_user': ['This field cannot be blank.']}"},
				{name: "registration", call: "storage_update_config", body: obj{"storage": third, "auth": reg},
					wantCode: 200, wantJSON: obj{"machines": obj{}}},
				{name: "then known, without auth", call: "storage_update_config",
					body: obj{"storage": obj{"name": "third", "secret": "s3"}}, wantCode: 200, wantJSON: obj{"machines": obj{}}},
				{name: "then known, wrong secret", call: "storage_update_config",
					body: obj{"storage": obj{"name": "third", "secret": "s4"}}, wantCode: 403, wantText: badAuth},
				{name: "a machine of another unit", call: "storage_ping_checkin",
					body: checkin(obj{"name": "third", "secret": "s3"}, machineUUID), wantCode: 404, wantText: "Machine not found"},
			}
		}},
		{name: "not due", steps: func(auth, _ obj) []step {
			return []step{{name: "checkin", call: "storage_ping_checkin", body: checkin(auth, machineUUID), wantCode: 200,
				wantJSON: checkinReply(obj{})}}
		}},
		{name: "due, then backed up", setup: func(t *testing.T, b Backend) obj { b.MakeDue(t, machineUUID, "etc"); return nil },
			steps: func(auth, _ obj) []step {
				return []step{
					{name: "checkin", call: "storage_ping_checkin", body: checkin(auth, machineUUID), wantCode: 200,
						wantJSON: checkinReply(obj{"etc": etcSource})},
					{name: "no sources", call: "storage_ping_source_update", body: obj{"storage": auth, "machine": obj{"uuid": machineUUID}},
						wantCode: 400, wantText: noSources},
					{name: "unknown source", call: "storage_ping_source_update", body: report(auth, obj{"home": obj{"success": true}}),
						wantCode: 404, wantText: "Source not found"},
					{name: "still due", call: "storage_ping_checkin", body: checkin(auth, machineUUID), wantCode: 200,
						wantJSON: checkinReply(obj{"etc": etcSource})},
					{name: "failure", call: "storage_ping_source_update", body: report(auth, obj{"etc": obj{"success": false,
						"summary": "rsync failed\n", "time_begin": 1764040500.12, "time_end": 1764040533.9}}), wantCode: 200, wantJSON: obj{}},
					{name: "due after a failure", call: "storage_ping_checkin", body: checkin(auth, machineUUID), wantCode: 200,
						wantJSON: checkinReply(obj{"etc": etcSource})},
					{name: "success", call: "storage_ping_source_update", body: report(auth, obj{"etc": obj{"success": true,
						"snapshot": "etc_20261125-031500_ab12", "summary": "Done\n", "time_begin": 1764040500.12,
						"time_end": 1764040533.9}}), wantCode: 200, wantJSON: obj{}},
					{name: "not due after a success", call: "storage_ping_checkin", body: checkin(auth, machineUUID), wantCode: 200,
						wantJSON: checkinReply(obj{})},
				}
			}},
	}
}
