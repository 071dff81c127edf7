package config

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadListen: what serve's listeners would refuse, or bind other than
// meant, is refused by Load (and so by config check), naming the file and
// the key.
func TestLoadListen(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string // every problem, exactly; none: it loads
	}{
		{"port zero", `"ssh_listen": "127.0.0.1:0", "metrics_listen": "127.0.0.1:0", "coordinator_listen": "127.0.0.1:0"`, nil},
		{"numeric ports", `"ssh_listen": "[::]:2222", "metrics_listen": "127.0.0.1:9410"`, nil},
		{"default ssh_listen", `"ssh_ping_port": 2222`, nil},
		{"ssh_listen without a port", `"ssh_listen": "127.0.0.1"`,
			[]string{`config.d/a.json: ssh_listen: want HOST:PORT, got "127.0.0.1"`}},
		{"ssh_listen with an empty port", `"ssh_listen": "127.0.0.1:"`,
			[]string{`config.d/a.json: ssh_listen: no port in "127.0.0.1:": want HOST:PORT`}},
		{"ssh_listen only a colon", `"ssh_listen": ":"`,
			[]string{`config.d/a.json: ssh_listen: no port in ":": want HOST:PORT`}},
		{"ssh_listen service name", `"ssh_listen": "0.0.0.0:ssh"`,
			[]string{`config.d/a.json: ssh_listen: want a port number, got "ssh" in "0.0.0.0:ssh" (service names are not looked up)`}},
		{"ssh_listen v6 without brackets", `"ssh_listen": "::1:22"`,
			[]string{`config.d/a.json: ssh_listen: want HOST:PORT, got "::1:22"`}},
		{"metrics_listen unknown service", `"metrics_listen": ":metrics"`,
			[]string{`config.d/a.json: metrics_listen: want a port number, got "metrics" in ":metrics" (service names are not looked up)`}},
		{"metrics_listen known service", `"metrics_listen": "localhost:http"`,
			[]string{`config.d/a.json: metrics_listen: want a port number, got "http" in "localhost:http" (service names are not looked up)`}},
		{"metrics_listen out of range", `"metrics_listen": "127.0.0.1:65536"`,
			[]string{`config.d/a.json: metrics_listen: port 65536 in "127.0.0.1:65536" is out of range 0..65535`}},
		{"metrics_listen negative", `"metrics_listen": "127.0.0.1:-1"`,
			[]string{`config.d/a.json: metrics_listen: want a port number, got "-1" in "127.0.0.1:-1" (service names are not looked up)`}},
		{"coordinator_listen service name", `"coordinator_listen": "127.0.0.1:http-alt"`,
			[]string{`config.d/a.json: coordinator_listen: want a port number, got "http-alt" in "127.0.0.1:http-alt" (service names are not looked up)`}},
		{"coordinator_listen without a port", `"coordinator_listen": "localhost"`,
			[]string{`config.d/a.json: coordinator_listen: want HOST:PORT, got "localhost"`}},
		{"coordinator_listen unused with api_url", `"api_url": "https://api.example/v1", "coordinator_listen": "localhost"`, nil},
		{"metrics on the ssh port", `"ssh_listen": ":2222", "metrics_listen": "127.0.0.1:2222"`,
			[]string{`config.d/a.json: metrics_listen: "127.0.0.1:2222" takes the port ssh_listen uses (":2222")`}},
		{"coordinator on the metrics address", `"coordinator_listen": "127.0.0.1:9410", "metrics_listen": "127.0.0.1:9410"`,
			[]string{`config.d/a.json: metrics_listen: "127.0.0.1:9410" takes the port coordinator_listen uses ("127.0.0.1:9410")`}},
		{"coordinator under 0.0.0.0", `"ssh_listen": "0.0.0.0:8410", "coordinator_listen": "127.0.0.1:8410"`,
			[]string{`config.d/a.json: coordinator_listen: "127.0.0.1:8410" takes the port ssh_listen uses ("0.0.0.0:8410")`}},
		{"metrics under [::]", `"ssh_listen": "[::]:9410", "metrics_listen": "127.0.0.1:9410"`,
			[]string{`config.d/a.json: metrics_listen: "127.0.0.1:9410" takes the port ssh_listen uses ("[::]:9410")`}},
		{"same port, other addresses", `"ssh_listen": "127.0.0.1:9410", "metrics_listen": "127.0.0.2:9410"`, nil},
		{"0.0.0.0 and an IPv6 address", `"ssh_listen": "0.0.0.0:9410", "metrics_listen": "[::1]:9410"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantProblems(t, err, tt.want)
		})
	}
}

// wantProblems checks that err is a *config.Error with exactly want as
// its problems, or nil when want is empty.
func wantProblems(t *testing.T, err error, want []string) {
	t.Helper()
	var got []string
	var ce *Error
	if errors.As(err, &ce) {
		got = ce.Problems
	} else if err != nil {
		t.Fatalf("got %v, want a *config.Error or none", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
