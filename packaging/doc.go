// Package packaging builds the Debian package (build-deb.sh with nfpm,
// the hardened systemd unit, the example configuration, the maintainer
// scripts); it holds no Go code of its own, only the test that builds the
// package and checks what it installs.
package packaging
