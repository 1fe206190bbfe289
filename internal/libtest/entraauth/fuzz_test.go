package entraauth_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/handler/entraauth"
)

// FuzzValidate feeds the validator mutations of a real token and of attack
// shapes. It must never panic, and must accept nothing but the genuine
// token's header and claims.
func FuzzValidate(f *testing.F) {
	fx := newFixture(f, entraauth.Config{})
	parts := strings.Split(fx.alice, ".")
	for _, seed := range []string{
		fx.alice, fx.appOnly, fx.frank, fx.notifyB,
		parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"a.b.c.d.e", "...", "", "garbage", strings.Repeat("A", 100),
	} {
		f.Add(seed)
	}
	// The tokens the validator accepts as they are: alice's and the app-only one.
	genuine := map[string]bool{}
	for _, tok := range []string{fx.alice, fx.appOnly} {
		p := strings.Split(tok, ".")
		genuine[string(decode(p[0]))+"."+string(decode(p[1]))] = true
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := fx.v.Validate(context.Background(), raw)
		if err != nil {
			return
		}
		got := strings.Split(raw, ".")
		if len(got) != 3 || !genuine[string(decode(got[0]))+"."+string(decode(got[1]))] {
			t.Fatalf("accepted a token that is not a genuine one: %q -> %+v", raw, id)
		}
	})
}

func decode(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}
