// Package agentproto parses what a Turku agent writes on its SSH session's
// stdin (docs/protocol.md §5): one JSON object, then a line holding only ".".
// Both the embedded SSH server and the OpenSSH forced-command mode
// ("turku-storage ping") use it, so the two can never disagree.
package agentproto
