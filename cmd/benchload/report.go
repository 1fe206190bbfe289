package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/internal/devstack"
)

// printTable writes the one table: a line per load.
func printTable(out io.Writer, rows []row, verify time.Duration) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "load\tconc\treqs\terrs\treq/s\tp50 ms\tp99 ms\tmax ms\t"+
		"cpu ms/req task\tnotif\taudit\tall\tin RSA verifies\t"+
		"tokens/1k obo\tcc\tmi\tother\t"+
		"written B/req task\tnotif\taudit\tall\t"+
		"peak RSS MB task\tnotif\taudit\t")
	for _, r := range rows {
		n := float64(max(r.n, 1))
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t",
			r.name, r.conc, r.n, r.errs, float64(r.n)/r.elapsed.Seconds(),
			ms(quantile(r.lat, 0.50)), ms(quantile(r.lat, 0.99)), ms(quantile(r.lat, 1)))
		var cpuAll time.Duration
		for _, app := range devstack.Apps() {
			fmt.Fprintf(tw, "%.3f\t", ms(r.cpu[app])/n)
			cpuAll += r.cpu[app]
		}
		fmt.Fprintf(tw, "%.3f\t%.1f\t", ms(cpuAll)/n, float64(cpuAll)/n/float64(verify))
		other := int64(0)
		for g, c := range r.grants {
			if g != entra.GrantOnBehalfOf && g != entra.GrantClientCredentials && g != entra.EndpointManagedIdentity {
				other += c
			}
		}
		per1k := func(c int64) float64 { return float64(c) * 1000 / n }
		fmt.Fprintf(tw, "%.1f\t%.1f\t%.1f\t%.1f\t", per1k(r.grants[entra.GrantOnBehalfOf]),
			per1k(r.grants[entra.GrantClientCredentials]), per1k(r.grants[entra.EndpointManagedIdentity]), per1k(other))
		var wAll int64
		for _, app := range devstack.Apps() {
			fmt.Fprintf(tw, "%.0f\t", float64(r.written[app])/n)
			wAll += r.written[app]
		}
		fmt.Fprintf(tw, "%.0f\t", float64(wAll)/n)
		for _, app := range devstack.Apps() {
			fmt.Fprintf(tw, "%.1f\t", float64(r.peakRSS[app])/(1<<20))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "bare RSA-2048 verify: %.1f µs CPU (this run; \"in RSA verifies\" = all cpu ms/req divided by it)\n",
		float64(verify)/float64(time.Microsecond))
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
