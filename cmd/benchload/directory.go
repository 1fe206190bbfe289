package main

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// benchDirectoryJSON is the emulator directory of the benchmark: the
// default directory plus benchUsersPerTenant Editors in each of the two
// tenants the Task API allows. It is a file, not code, so it can be read
// and reused (`entra-emulator -config cmd/benchload/bench-directory.json`);
// TestBenchDirectory keeps it equal to what benchDirectory builds (`go
// test ./cmd/benchload -update` writes it again).
//
//go:embed bench-directory.json
var benchDirectoryJSON []byte

// benchUsersPerTenant Editors are added to the home tenant and to Fabrikam.
const benchUsersPerTenant = 12

// benchTenants are the tenants the bench users are in, with the prefix of
// their object ids (b1… home, b2… Fabrikam).
var benchTenants = []struct{ id, domain, oidPrefix string }{
	{entra.HomeTenantID, "home.handoff.test", "b1000000"},
	{entra.SecondTenantID, "fabrikam.handoff.test", "b2000000"},
}

// benchDirectory is the default directory plus the bench users, each an
// Editor of the Task API (so each may create and list tasks).
func benchDirectory() *entra.Directory {
	d := entra.DefaultDirectory()
	for _, bt := range benchTenants {
		var tenant *entra.Tenant
		for _, t := range d.Tenants {
			if t.ID == bt.id {
				tenant = t
			}
		}
		for i := 1; i <= benchUsersPerTenant; i++ {
			oid := fmt.Sprintf("%s-0000-4000-8000-%012d", bt.oidPrefix, i)
			tenant.Users = append(tenant.Users, &entra.User{
				ObjectID: oid, Name: fmt.Sprintf("Bench User %02d", i),
				PreferredUsername: fmt.Sprintf("bench%02d@%s", i, bt.domain), Password: entra.DefaultUserPassword,
			})
			tenant.AppRoleAssignments = append(tenant.AppRoleAssignments, &entra.AppRoleAssignment{
				PrincipalType: entra.PrincipalUser, PrincipalID: oid, ResourceAppID: entra.TaskAPIClientID, Role: entra.RoleEditor,
			})
		}
	}
	return d
}

// loadBenchDirectory parses the embedded directory.
func loadBenchDirectory() (*entra.Directory, error) {
	return entra.LoadDirectory(bytes.NewReader(benchDirectoryJSON))
}

// benchUser is a user the benchmark signs in.
type benchUser struct{ username, domain string }

// benchUsers are the users of d the benchmark signs in: those named
// bench* in the bench tenants.
func benchUsers(d *entra.Directory) []benchUser {
	var out []benchUser
	for _, bt := range benchTenants {
		for _, t := range d.Tenants {
			if t.ID != bt.id {
				continue
			}
			for _, u := range t.Users {
				if len(u.PreferredUsername) > 5 && u.PreferredUsername[:5] == "bench" {
					out = append(out, benchUser{u.PreferredUsername, bt.domain})
				}
			}
		}
	}
	return out
}
