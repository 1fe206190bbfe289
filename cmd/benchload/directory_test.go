package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
)

var update = flag.Bool("update", false, "write bench-directory.json from benchDirectory")

// TestBenchDirectory: the file is benchDirectory (the default directory
// plus the bench users) as JSON, so a change to the default directory
// shows here; the default directory has no bench user.
func TestBenchDirectory(t *testing.T) {
	want, err := json.MarshalIndent(benchDirectory(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("bench-directory.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(benchDirectoryJSON, want) {
		t.Fatal("bench-directory.json is not benchDirectory(): run `go test ./cmd/benchload -run TestBenchDirectory -update`")
	}
	d, err := loadBenchDirectory()
	if err != nil {
		t.Fatalf("the emulator refuses the bench directory: %v", err)
	}
	users := benchUsers(d)
	if len(users) != 2*benchUsersPerTenant || len(users) < 20 {
		t.Errorf("bench users = %d, want %d (at least 20)", len(users), 2*benchUsersPerTenant)
	}
	// The cold start's users (the reference On-Behalf-Of requests' at the
	// home tenant's authority, the cold creates', the new users') are the
	// home tenant's first ones.
	for i := range max(1+oboSamples, 2+2*coldRuns) {
		if i >= len(users) || users[i].domain != users[0].domain {
			t.Fatalf("bench user %d is not in the first tenant: %+v", i, users)
		}
	}
	domains := map[string]bool{}
	for _, u := range users {
		domains[u.domain] = true
	}
	if len(domains) < 2 {
		t.Errorf("bench users are in %d tenants, want at least 2", len(domains))
	}
	if n := len(benchUsers(entra.DefaultDirectory())); n != 0 {
		t.Errorf("the default directory has %d bench users, want none", n)
	}
}
