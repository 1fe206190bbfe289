package downstream_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/handoff-dev/handoff/handler/downstream"
)

// One Client per process, built in main. New does no I/O; the raw form of
// OnBehalfOf takes the bearer token the API received and the user's tenant,
// and refuses "common" (or any tenant that is not a GUID) before any request.
func ExampleClient_OnBehalfOf() {
	secret, err := downstream.ClientSecret("the app's secret") // in Azure: FederatedManagedIdentity
	if err != nil {
		panic(err)
	}
	client, err := downstream.New(downstream.Config{
		Authority:    "https://login.microsoftonline.com",
		HomeTenantID: "10000000-0000-4000-8000-000000000001",
		ClientID:     "a0000000-0000-4000-8000-000000000001",
		Credential:   secret,
	})
	if err != nil {
		panic(err)
	}
	_, err = client.OnBehalfOf(context.Background(), "eyJ...the user's token", "common", "api://orders/.default")
	fmt.Println(errors.Is(err, downstream.ErrNotDelegated))
	// Output:
	// true
}

// A downstream API needs the user's consent: the calling API relays a
// challenge its own client (MSAL.js) understands.
func ExampleChallenge() {
	err := &downstream.ConsentRequiredError{
		TokenError: &downstream.TokenError{Code: 65001, OAuthError: "invalid_grant"},
		Scopes:     []string{"api://b0000000-0000-4000-8000-000000000002/.default"},
	}
	header, ok := downstream.Challenge(err, "https://login.microsoftonline.com", "10000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000001")
	fmt.Println(ok)
	fmt.Println(header)
	// Output:
	// true
	// Bearer realm="", authorization_uri="https://login.microsoftonline.com/10000000-0000-4000-8000-000000000001/oauth2/v2.0/authorize", client_id="a0000000-0000-4000-8000-000000000001", error="consent_required", scope="api://b0000000-0000-4000-8000-000000000002/.default"
}

// Only a 401 whose challenge says invalid_token is worth a new token
// (Client.RefreshAppToken, Client.RefreshOnBehalfOf); insufficient_scope is not.
func ExampleInvalidTokenChallenge() {
	for _, challenge := range []string{`Bearer error="invalid_token", error_description="key not found"`, `Bearer error="insufficient_scope"`} {
		resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}}
		fmt.Println(downstream.InvalidTokenChallenge(resp))
	}
	// Output:
	// true
	// false
}

// A Token prints without its secret part.
func ExampleToken_String() {
	tok := downstream.Token{AccessToken: "eyJ0eXAi...", ExpiresOn: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	fmt.Println(tok)
	// Output:
	// Token{expires 2030-01-02T03:04:05Z}
}
