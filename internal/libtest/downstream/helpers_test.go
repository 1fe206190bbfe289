package downstream_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func claimsOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	var c map[string]any
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("decode claims: %v", err)
	}
	return c
}
