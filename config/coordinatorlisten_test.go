package config

import (
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/testcert"
)

func TestCoordinatorListen(t *testing.T) {
	cert, key, _ := testcert.Write(t, t.TempDir())
	refused := `coordinator_listen: %q is not a loopback address and coordinator_tls_cert is not set`
	tests := []struct {
		name  string
		extra string
		want  string // a problem the error must contain; "" for none
	}{
		{"default", ``, ""},
		{"loopback v4", `"coordinator_listen": "127.0.0.2:8410"`, ""},
		{"loopback v6", `"coordinator_listen": "[::1]:8410"`, ""},
		{"localhost", `"coordinator_listen": "localhost:8410"`, ""},
		{"every interface", `"coordinator_listen": ":8410"`, strings.ReplaceAll(refused, "%q", `":8410"`)},
		{"public address", `"coordinator_listen": "192.0.2.10:8410"`, strings.ReplaceAll(refused, "%q", `"192.0.2.10:8410"`)},
		{"host name", `"coordinator_listen": "turku.example.com:8410"`, strings.ReplaceAll(refused, "%q", `"turku.example.com:8410"`)},
		{"every v6 interface", `"coordinator_listen": "[::]:8410"`, strings.ReplaceAll(refused, "%q", `"[::]:8410"`)},
		{"operator says so", `"coordinator_listen": ":8410", "coordinator_insecure_listen": true`, ""},
		{"insecure not a bool", `"coordinator_listen": ":8410", "coordinator_insecure_listen": "yes"`,
			"coordinator_insecure_listen: want true or false, got a string"},
		{"with TLS", `"coordinator_listen": ":8410", "coordinator_tls_cert": "` + cert + `", "coordinator_tls_key": "` + key + `"`, ""},
		{"not host:port", `"coordinator_listen": "8410"`, `coordinator_listen: want HOST:PORT, got "8410"`},
		{"api_url set: not served", `"api_url": "https://api.example/v1", "coordinator_listen": ":8410"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantErrContaining(t, err, tt.want)
		})
	}
}
