package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

// warmSamples sequential creates after the first one give the warm p50
// under the same conditions (one client, the token latency on).
const warmSamples = 21

// coldRuns cold starts are measured; the median first create is reported
// (the machine is shared: one run can be delayed by anything).
const coldRuns = 3

// oboSamples On-Behalf-Of requests, each for another user's token (so
// each is a request to the token endpoint, none from a cache), give the
// reference round trip: their median. A single one varied by up to 2 ms
// between runs on this machine (docs/performance.md), as much as the
// margin the target is about.
const oboSamples = 5

// coldResult is the first create after a cold start of the three apps.
type coldResult struct {
	warmUp  string          // on or off
	latency time.Duration   // the emulator's token latency
	first   time.Duration   // the median of coldRuns
	firsts  []time.Duration // sorted
	warmP50 time.Duration
	// newUser is the median first create of another user in the warm
	// processes: one On-Behalf-Of request, nothing else fetched.
	newUser time.Duration
	oboTrip time.Duration // one On-Behalf-Of request at that latency: the median of oboSamples
}

// coldStart restarts the three apps with the token endpoint slowed down,
// and times the first create, as soon as they answer, against the warm
// p50 and one On-Behalf-Of round trip.
func (b *bench) coldStart(ctx context.Context) (coldResult, error) {
	c := coldResult{warmUp: b.o.warmUp, latency: b.o.tokenLatency}
	b.stack.Entra.SetTokenLatency(c.latency)
	defer b.stack.Entra.SetTokenLatency(0)
	var err error
	if c.oboTrip, err = b.oboRoundTrip(ctx); err != nil {
		return c, err
	}
	var warm, newUser []time.Duration
	for run := range coldRuns {
		first, w, err := b.coldCreate(ctx, run)
		if err != nil {
			return c, err
		}
		c.firsts = append(c.firsts, first)
		warm = append(warm, w...)
		// A user this process has not seen yet (the cold creates use 2, 3, 4).
		t0 := time.Now()
		if err := b.create(ctx, 2+coldRuns+run); err != nil {
			return c, err
		}
		newUser = append(newUser, time.Since(t0))
	}
	slices.Sort(c.firsts)
	slices.Sort(warm)
	slices.Sort(newUser)
	c.first, c.warmP50, c.newUser = quantile(c.firsts, 0.5), quantile(warm, 0.5), quantile(newUser, 0.5)
	return c, nil
}

// coldCreate restarts the three apps and times the first create, then
// warmSamples more.
func (b *bench) coldCreate(ctx context.Context, run int) (first time.Duration, warm []time.Duration, err error) {
	for _, app := range devstack.Apps() {
		if err := b.stack.StopApp(app); err != nil {
			return 0, nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(devstack.Apps()))
	for i, app := range devstack.Apps() {
		wg.Go(func() { errs[i] = b.stack.StartApp(ctx, app) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	// The create starts as soon as every app answers: what a request that
	// woke a scaled-to-zero app would see. Each run is another user.
	user := 2 + run
	t0 := time.Now()
	if err := b.create(ctx, user); err != nil {
		return 0, nil, err
	}
	first = time.Since(t0)
	// In the stack's log, beside the apps' own lines, to see where the
	// first create's time went (docs/performance.md).
	fmt.Fprintf(b.log, "[benchload] cold start %d: first create sent %s, answered %s (%.1f ms)\n",
		run+1, t0.UTC().Format(time.RFC3339Nano), t0.Add(first).UTC().Format(time.RFC3339Nano), ms(first))
	for range warmSamples {
		t0 := time.Now()
		if err := b.create(ctx, user); err != nil {
			return 0, nil, err
		}
		warm = append(warm, time.Since(t0))
	}
	return first, warm, nil
}

// oboRoundTrip times one On-Behalf-Of request, as the Task API makes it
// (MSAL, its dev secret), after a first one resolved the authority: the
// median of oboSamples, each for another user.
func (b *bench) oboRoundTrip(ctx context.Context) (time.Duration, error) {
	cred, err := confidential.NewCredFromSecret(entra.TaskAPISecret)
	if err != nil {
		return 0, err
	}
	cc, err := confidential.New(b.stack.Entra.BaseURL()+"/"+entra.HomeTenantID, entra.TaskAPIClientID, cred,
		confidential.WithHTTPClient(b.stack.Entra.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		return 0, err
	}
	scopes := []string{entra.NotificationClientID + "/.default"}
	if _, err := cc.AcquireTokenOnBehalfOf(ctx, b.tokens[0], scopes); err != nil {
		return 0, fmt.Errorf("On-Behalf-Of: %w", err)
	}
	var trips []time.Duration
	for _, tok := range b.tokens[1 : 1+oboSamples] {
		t0 := time.Now()
		if _, err := cc.AcquireTokenOnBehalfOf(ctx, tok, scopes); err != nil {
			return 0, fmt.Errorf("On-Behalf-Of: %w", err)
		}
		trips = append(trips, time.Since(t0))
	}
	slices.Sort(trips)
	return quantile(trips, 0.5), nil
}

func (c coldResult) print(out io.Writer) error {
	target := c.warmP50 + c.oboTrip
	verdict := "met"
	if c.first > target {
		verdict = "NOT met"
	}
	var firsts []string
	for _, f := range c.firsts {
		firsts = append(firsts, fmt.Sprintf("%.1f", ms(f)))
	}
	_, err := fmt.Fprintf(out, "cold start (warm-up %s, token latency %v): first create %.1f ms (median of %s); warm p50 %.1f ms (c1) + one OBO round trip %.1f ms (median of %d) = target %.1f ms: %s; a new user's first create in the warm apps: %.1f ms\n",
		c.warmUp, c.latency, ms(c.first), strings.Join(firsts, ", "), ms(c.warmP50), ms(c.oboTrip), oboSamples, ms(target), verdict, ms(c.newUser))
	return err
}
