package downstream

import (
	"fmt"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// TestAppTokensKept: an app token is served from the client's own cache
// until expiryMargin before it expires; only the current MSAL client's
// tokens are kept (one that a rotation or a forced refresh replaced adds
// nothing), at most maxAppTokenScopes scope sets, and replacing the client
// drops them.
func TestAppTokensKept(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cred, err := ClientSecret("secret")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Authority: "https://login.example", HomeTenantID: "10000000-0000-4000-8000-000000000001",
		ClientID: "app", Credential: cred, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	current := &confidential.Client{}
	c.app = current
	tok := Token{AccessToken: "t1", ExpiresOn: now.Add(time.Hour)}

	c.keepAppToken("app s", &confidential.Client{}, tok) // a replaced client's
	if _, ok := c.cachedAppToken("app s"); ok {
		t.Fatal("a token of a replaced client was kept")
	}
	c.keepAppToken("app s", current, tok)
	if got, ok := c.cachedAppToken("app s"); !ok || got != tok {
		t.Fatalf("cachedAppToken = %v, %v; want %v", got, ok, tok)
	}
	now = tok.ExpiresOn.Add(-expiryMargin) // at the margin: no longer served
	if _, ok := c.cachedAppToken("app s"); ok {
		t.Error("a token within expiryMargin of expiring was served")
	}
	now = tok.ExpiresOn.Add(-expiryMargin - time.Second)
	if _, ok := c.cachedAppToken("app s"); !ok {
		t.Error("a token a second before the margin was not served")
	}

	for i := range maxAppTokenScopes + 5 {
		c.keepAppToken(fmt.Sprintf("app scope-%d", i), current, tok)
	}
	if n := len(c.appTokens); n != maxAppTokenScopes {
		t.Errorf("%d scope sets kept, bound %d", n, maxAppTokenScopes)
	}
	c.keepAppToken("app s", current, Token{AccessToken: "t2", ExpiresOn: tok.ExpiresOn}) // a kept key is replaced at the bound
	if got, _ := c.cachedAppToken("app s"); got.AccessToken != "t2" {
		t.Errorf("a kept scope set's token was not replaced at the bound: %v", got)
	}

	if _, _, err := c.current(t.Context()); err != nil { // builds the MSAL client for the credential
		t.Fatal(err)
	}
	if _, ok := c.cachedAppToken("app s"); ok || len(c.appTokens) != 0 {
		t.Errorf("a new MSAL client kept the old one's %d tokens", len(c.appTokens))
	}
}
