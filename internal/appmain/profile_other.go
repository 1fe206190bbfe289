//go:build !unix

package appmain

import "os"

// profileSignals: none outside Unix; the profile is written at stop.
var profileSignals []os.Signal
