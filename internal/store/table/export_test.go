package table

// Test access to the Table store's internals, for table_test.go (package
// table_test).

import "net/http"

// ExpandConnectionString is the connection string Open hands aztables for cs.
func ExpandConnectionString(cs string) (string, error) { return expandConnectionString(cs) }

// ManagedIdentityClientID is the user-assigned identity ConfigFromEnv chose.
func (c Config) ManagedIdentityClientID() string { return c.managedIdentityClientID }

// Key is the key form of an id.
var Key = tableKey

// BatchFailure is the failed operation's status and error code in a transaction's answer.
func BatchFailure(resp *http.Response) (int, string) { return batchFailure(resp) }
