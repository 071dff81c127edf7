package config

import "testing"

// TestLoadPlaceholders: a value left as a template wrote it is refused,
// naming the file (with the line, where it can be found) and the key, and
// saying what to put there.
func TestLoadPlaceholders(t *testing.T) {
	const vols = `"volumes": {"v": {"path": "/v"}}`
	const mkSecret = "make one with: openssl rand -hex 32"
	tests := []struct {
		name  string
		files map[string]string
		want  []string // every problem, exactly; none: it loads
	}{
		{
			name:  "CHANGE-ME",
			files: map[string]string{"a.json": `{"name": "n", "secret": "CHANGE-ME", ` + vols + `}`},
			want:  []string{`config.d/a.json:1: secret: "CHANGE-ME" is a placeholder; ` + mkSecret},
		},
		{
			name:  "spelt otherwise",
			files: map[string]string{"a.json": `{"name": "n", "secret": " <Change_Me> ", "machine_registration_secret": "changeme", ` + vols + `}`},
			want: []string{
				`config.d/a.json:1: secret: " <Change_Me> " is a placeholder; ` + mkSecret,
				`config.d/a.json:1: machine_registration_secret: "changeme" is a placeholder; ` + mkSecret,
			},
		},
		{
			name: "words a secret is not",
			files: map[string]string{"a.json": `{"name": "n", "secret": "Secret", "api_auth_name": "Storage Registrations",
				"api_auth_secret": "password", "api_auth": "[TODO]", "machine_registration_secret": "xxxxxx", ` + vols + `}`},
			want: []string{
				`config.d/a.json:1: secret: "Secret" is a placeholder; ` + mkSecret,
				`config.d/a.json:2: api_auth: "[TODO]" is a placeholder; set the registration string turku-api's administrator gave`,
				`config.d/a.json:2: api_auth_secret: "password" is a placeholder; set the registration secret turku-api's administrator gave`,
				`config.d/a.json:2: machine_registration_secret: "xxxxxx" is a placeholder; ` + mkSecret,
			},
		},
		{
			name:  "FIXME and example",
			files: map[string]string{"a.json": `{"name": "n", "secret": "FIXME", "api_auth_name": "a", "api_auth_secret": "example", ` + vols + `}`},
			want: []string{
				`config.d/a.json:1: secret: "FIXME" is a placeholder; ` + mkSecret,
				`config.d/a.json:1: api_auth_secret: "example" is a placeholder; set the registration secret turku-api's administrator gave`,
			},
		},
		{
			name: "other keys: once, with the line",
			files: map[string]string{"10-storage.yaml": "name: n\nsecret: 9c1f0b7e\n\napi_url: CHANGE-ME\nssh_ping_host: <change me>\n" +
				"log_file: TODO\nvolumes:\n  v:\n    path: /v\n"},
			want: []string{
				`config.d/10-storage.yaml:4: api_url: "CHANGE-ME" is a placeholder; set turku-api's URL, or remove the line to run the built-in coordinator`,
				`config.d/10-storage.yaml:6: log_file: "TODO" is a placeholder; replace it with this site's value (docs/configuration.md)`,
				`config.d/10-storage.yaml:5: ssh_ping_host: "<change me>" is a placeholder; set the name agents connect to this host by`,
			},
		},
		{
			name: "set by a later file",
			files: map[string]string{
				"10-a.json": `{"name": "n", "secret": "9c1f0b7e", ` + vols + `}`,
				"20-b.json": "{\n  \"secret\": \"CHANGEME\"\n}\n",
			},
			want: []string{`config.d/20-b.json:2: secret: "CHANGEME" is a placeholder; ` + mkSecret},
		},
		{
			name:  "words that are no placeholder",
			files: map[string]string{"a.json": `{"name": "example", "secret": "secretive-9c1f", "api_auth_name": "Storage Registrations", "api_auth_secret": "xx", "ssh_ping_host": "secret", ` + vols + `}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.files))
			wantProblems(t, err, tt.want)
		})
	}
}

// An environment variable is named as what set the placeholder.
func TestLoadPlaceholderFromEnvironment(t *testing.T) {
	dir := writeConfig(t, map[string]string{"a.json": `{"name": "n", "secret": "9c1f0b7e", "volumes": {"v": {"path": "/v"}}}`})
	t.Setenv("TURKU_STORAGE_SECRET", "change-me")
	_, err := Load(dir)
	want := `environment TURKU_STORAGE_SECRET: secret: "change-me" is a placeholder; make one with: openssl rand -hex 32`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func FuzzPlaceholderForm(f *testing.F) {
	for _, s := range []string{"CHANGE-ME", " <Change_Me> ", "xxxxxx", "[TODO]", "secretive-9c1f", "", "ß-Ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := placeholderForm(s)
		if placeholderForm(p) != p {
			t.Errorf("placeholderForm(%q) = %q, which is not its own form (%q)", s, p, placeholderForm(p))
		}
	})
}
