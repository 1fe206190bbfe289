// Package guid recognizes the GUIDs Entra ID uses for tenants and objects.
package guid

import "regexp"

var re = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Valid reports whether s is a lower-case GUID, the form Entra's tid and
// oid claims take (so "common", "organizations" and domain names are not).
func Valid(s string) bool { return re.MatchString(s) }
