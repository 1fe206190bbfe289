package guid

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"10000000-0000-4000-8000-000000000001":   true,
		"10000000-0000-4000-8000-00000000000A":   false, // upper case: Entra's claims are lower case
		"common":                                 false,
		"organizations":                          false,
		"contoso.onmicrosoft.com":                false,
		"":                                       false,
		"10000000-0000-4000-8000-000000000001 ":  false,
		"{10000000-0000-4000-8000-000000000001}": false,
	} {
		if Valid(s) != want {
			t.Errorf("Valid(%q) = %v, want %v", s, !want, want)
		}
	}
}
