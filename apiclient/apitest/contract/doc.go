// Package contract is one table of turku-api's storage-facing behaviour
// (transport rules, auth, 400/403/404 answers and their bodies, required
// fields, due and not-due sources) that every implementation of the API in
// this repository must pass: the tests' fake (apiclient/apitest) and the
// built-in coordinator (coordinator) each run it from their own tests, so
// the two cannot drift apart. It imports nothing of ours; docs/protocol.md
// describes the calls.
package contract
