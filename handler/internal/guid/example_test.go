package guid_test

import (
	"fmt"

	"github.com/handoff-dev/handoff/handler/internal/guid"
)

// A tenant for On-Behalf-Of must be the user's tenant id, never a
// multi-tenant alias.
func ExampleValid() {
	fmt.Println(guid.Valid("10000000-0000-4000-8000-000000000001"), guid.Valid("common"))
	// Output: true false
}
