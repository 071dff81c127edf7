// Package buildinfo says which build a binary is: the version, commit
// and date the linker set (-X main.version=…), else what go build
// recorded (the module version, the VCS revision, time and whether the
// tree was modified). `version` (WriteText), the API client's User-Agent
// and serve's log report it.
package buildinfo
