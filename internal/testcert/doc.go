// Package testcert makes self-signed TLS certificates for tests of the
// listeners that serve HTTPS (the built-in coordinator, the dashboard) and
// of the configuration that names their files. It is for tests only.
package testcert
