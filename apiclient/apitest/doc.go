// Package apitest is a faithful in-process fake of the storage-facing
// turku-api endpoints for tests: it enforces the real API's transport and
// auth rules (POST, exact JSON content type, 400/403/404 bodies) and
// records every request so a test can assert what was reported. It passes
// the same contract suite (apiclient/apitest/contract) as the built-in
// coordinator.
package apitest
