package secrets_test

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/handoff-dev/handoff/handler/secrets"
)

// noCredential stands for azidentity's ManagedIdentityCredential, the
// credential an app in Azure reads its vault with. NewVault does no I/O, so
// this example never asks it for a token.
type noCredential struct{}

func (noCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, fmt.Errorf("not used")
}

// A vault URL must be https; a mistyped one fails at startup, not at the
// first secret read.
func ExampleNewVault() {
	_, err := secrets.NewVault("http://contoso.vault.azure.net", noCredential{}, secrets.Options{})
	fmt.Println(err)
	vault, err := secrets.NewVault("https://contoso.vault.azure.net", noCredential{}, secrets.Options{})
	fmt.Println(err)
	_ = vault.Secret("orders-api-client-secret") // a downstream.SecretSource for downstream.RotatingSecret
	// Output:
	// secrets: vault URL "http://contoso.vault.azure.net" must be https://<name>.vault.azure.net
	// <nil>
}
