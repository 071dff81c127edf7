package pyjson

import "testing"

// The wanted strings are what CPython 3.11 prints for
// json.dumps(value) (ensure_ascii=True).
func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "etc_20261125-031500_ab12", want: `"etc_20261125-031500_ab12"`},
		{name: "escapes", in: "\"\\\n\r\t\b\f", want: `"\"\\\n\r\t\b\f"`},
		{name: "control and DEL", in: "\x01\x7f", want: `"\u0001\u007f"`},
		{name: "non-ASCII", in: "é", want: `"\u00e9"`},
		{name: "astral", in: "\U0001F600", want: `"\ud83d\ude00"`},
		{name: "empty", in: "", want: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDumpStrings(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{in: nil, want: "[]"},
		{in: []string{"a\x7fé\U0001F600\"\\\n\x01"}, want: `["a\u007f\u00e9\ud83d\ude00\"\\\n\u0001"]`},
		{in: []string{"ssh-ed25519 AAAA x", "- *.tmp"}, want: `["ssh-ed25519 AAAA x", "- *.tmp"]`},
	}
	for _, tt := range tests {
		if got := DumpStrings(tt.in); got != tt.want {
			t.Errorf("DumpStrings(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
