// Package agenttest plays a real Turku agent in tests: a real
// `rsync --daemon` configured the way turku-agent configures it, and the
// real OpenSSH `ssh` client run with the agent's exact flags. Everything
// binds loopback only, and every process it starts is stopped by
// t.Cleanup.
package agenttest
