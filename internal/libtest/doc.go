// Package libtest holds, in its subdirectories, the tests of the library
// (the handler module, github.com/handoff-dev/handoff/handler) that run
// against the emulators: entraauth (the attack table, key refresh, the fuzz
// target and the benchmark) and downstream (On-Behalf-Of, client
// credentials, credentials from Key Vault).
//
// They live in the root module because the emulators do: the handler module
// cannot require the root module, even for its tests alone, without breaking
// the `go mod tidy` of every program that imports the library (Go resolves
// the test dependencies of a dependency's packages, and the root module has
// no published version to resolve to).
package libtest
