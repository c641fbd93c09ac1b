package version

import "testing"

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name, rev string
		modified  bool
		want      string
	}{
		{"unknown", "", false, ""},
		{"unknown but modified", "", true, ""},
		{"full hash", "0123456789abcdef0123456789abcdef01234567", false, "0123456789ab"},
		{"modified", "0123456789abcdef0123456789abcdef01234567", true, "0123456789ab-dirty"},
		{"already short", "abc1234", false, "abc1234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(tc.rev, tc.modified); got != tc.want {
				t.Errorf("describe(%q, %v) = %q, want %q", tc.rev, tc.modified, got, tc.want)
			}
		})
	}
}

func TestPseudo(t *testing.T) {
	for v, want := range map[string]bool{
		"v0.4.0":                             false,
		"v0.4.0-rc.1":                        false,
		"v0.4.0+dirty":                       false,
		"v0.0.0-20261122004742-6dabad21d125": true,
		"v0.4.1-0.20261122004742-6dabad21d125+dirty": true,
	} {
		if got := pseudo.MatchString(v); got != want {
			t.Errorf("pseudo.MatchString(%q) = %v, want %v", v, got, want)
		}
	}
}
