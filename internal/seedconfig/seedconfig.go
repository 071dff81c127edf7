// Package seedconfig holds the example configuration of the original
// turku-storage README, for the tests that show an old unit's config.d is
// read unchanged (config's loader, and a migrated unit end to end).
package seedconfig

// README is the README's example config.d file, byte for byte.
const README = `{
    "api_auth": "STORAGE AUTH STRING",
    "api_url": "https://turku.example.com/v1",
    "authorized_keys_command": "sudo /usr/local/bin/turku-storage-ping",
    "name": "primary",
    "secret": "RANDOM SECRET",
    "snapshot_mode": "link-dest",
    "ssh_ping_host": "primary.turku.example.com",
    "ssh_ping_port": 22,
    "ssh_ping_user": "turku-ping",
    "volumes": {
        "default": {
            "path": "/media/backup/turku"
        }
    }
}
`
