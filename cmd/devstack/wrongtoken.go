package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// wrongOnPurpose are `devstack token`'s flags for a token that an API must
// refuse. No real flow issues one, so such a token is minted by the running
// emulator's admin API (entra.Mint, as `entra-emulator token` does), signed
// as the emulator signs, so that only the named defect makes it fail.
type wrongOnPurpose struct {
	req entra.MintRequest
}

func wrongFlags(fs *flag.FlagSet) *wrongOnPurpose {
	w := &wrongOnPurpose{}
	fs.BoolVar(&w.req.Expired, "expired", false, "wrong on purpose: expired an hour ago")
	fs.BoolVar(&w.req.NotYetValid, "not-yet-valid", false, "wrong on purpose: valid from an hour from now")
	fs.BoolVar(&w.req.BadSignature, "bad-signature", false, "wrong on purpose: the current kid, signed by another key")
	fs.BoolVar(&w.req.UnknownKID, "unknown-kid", false, "wrong on purpose: a kid the emulator never published")
	fs.StringVar(&w.req.Audience, "audience", "", "wrong on purpose: this aud instead")
	fs.StringVar(&w.req.Issuer, "issuer", "", "wrong on purpose: this iss instead")
	fs.BoolVar(&w.req.V1, "v1", false, "a v1 token (the apps accept v2 only)")
	return w
}

func (w *wrongOnPurpose) any() bool {
	r := w.req
	return r.Expired || r.NotYetValid || r.BadSignature || r.UnknownKID || r.Audience != "" || r.Issuer != "" || r.V1
}

// wrongToken mints the token the flags describe, for the API --for names:
// a user's token for the Task API or the Notification Service, or an app's
// (--app) for the Audit Service.
func wrongToken(ctx context.Context, hc *http.Client, entraURL string, w *wrongOnPurpose, users []string, app, api string) (string, error) {
	req := w.req
	switch {
	case app != "":
		if len(users) != 0 {
			return "", errors.New("an app-only token (--app) names no user")
		}
		d, ok := daemonApps[app]
		if !ok {
			return "", fmt.Errorf("--app %q: the apps with a dev secret are operator and task", app)
		}
		if api != "" && api != forAudit {
			return "", fmt.Errorf("--for %q: app-only tokens are for the Audit Service (--for audit)", api)
		}
		req.Client, req.Resource = d.clientID, entra.AuditClientID
	case len(users) == 1:
		req.User = users[0]
		if !strings.Contains(req.User, "@") {
			req.User += "@home.handoff.test"
		}
		switch api {
		case "", forTask:
			req.Resource = entra.TaskAPIClientID
		case forNotification:
			req.Client, req.Resource = entra.TaskAPIClientID, entra.NotificationClientID
		default:
			return "", fmt.Errorf("--for %q: a user's token is for task or notification", api)
		}
	default:
		return "", errors.New("name one user after the flags (e.g. `devstack token --expired alice`), or an app with --app")
	}
	resp, err := entra.Mint(ctx, hc, entraURL, req)
	if err != nil {
		return "", fmt.Errorf("the emulator's token minting: %w", err)
	}
	return resp.AccessToken, nil
}
