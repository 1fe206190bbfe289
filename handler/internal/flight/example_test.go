package flight_test

import (
	"context"
	"fmt"
	"time"

	"github.com/handoff-dev/handoff/handler/internal/flight"
)

// A key set fetched once for every caller waiting on it, under the
// process's context and a bound of its own.
func ExampleGroup() {
	keys := flight.Group[[]string]{Base: context.Background(), Timeout: 10 * time.Second}
	got, err := keys.Do(context.Background(), "jwks", func(ctx context.Context) ([]string, error) {
		return []string{"kid-1", "kid-2"}, nil
	})
	fmt.Println(got, err)
	// Output: [kid-1 kid-2] <nil>
}
