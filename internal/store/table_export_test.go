package store

// Test access to the Table store's internals, for table_test.go (package
// store_test).

import "net/http"

// ExpandConnectionString is the connection string OpenTable hands aztables for cs.
func ExpandConnectionString(cs string) (string, error) { return expandConnectionString(cs) }

// ManagedIdentityClientID is the user-assigned identity TableConfigFromEnv chose.
func (c TableConfig) ManagedIdentityClientID() string { return c.managedIdentityClientID }

// TableKey is the key form of an id.
var TableKey = tableKey

// BatchFailure is the failed operation's status and error code in a transaction's answer.
func BatchFailure(resp *http.Response) (int, string) { return batchFailure(resp) }
