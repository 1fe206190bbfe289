package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// The APIs `devstack token --for` names.
const (
	forTask         = "task"
	forNotification = "notification"
	forAudit        = "audit"
)

// daemonApps are the confidential clients `devstack token --app` signs in
// as, with their dev secrets: the operator app (AuditLog.Read on the Audit
// Service) and the Task API itself (AuditLog.Write).
var daemonApps = map[string]struct{ clientID, secret string }{
	"operator": {entra.OperatorClientID, entra.OperatorSecret},
	"task":     {entra.TaskAPIClientID, entra.TaskAPISecret},
}

// tokenCommand prints (only) an access token from the running devstack's
// Entra emulator, got with the flow a real client uses:
//
//	devstack token alice                           password grant (the dev
//	                                               client) for the Task API
//	devstack token --for notification alice        that token exchanged
//	                                               On-Behalf-Of alice by the
//	                                               Task API (its dev secret)
//	                                               for the Notification Service
//	devstack token --app operator --for audit      client credentials: an
//	                                               app-only token
//	devstack token --expired bob                   a token wrong on purpose
//	                                               (also --not-yet-valid,
//	                                               --bad-signature, --unknown-kid,
//	                                               --audience, --issuer, --v1),
//	                                               minted by the emulator's
//	                                               admin API (no flow issues one)
//
// A user without a domain is in the home tenant (alice means
// alice@home.handoff.test). A failed sign-in exits non-zero with the
// emulator's AADSTS message.
func tokenCommand(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devstack token", flag.ContinueOnError)
	state := fs.String("state", "", "the running devstack's state directory (default <repo>/.state)")
	api := fs.String("for", "", "the API: task (default) or notification for a user; audit (default) for an app")
	app := fs.String("app", "", "an app-only token for this app: operator or task (client credentials)")
	password := fs.String("password", entra.DefaultUserPassword, "the user's password")
	wrong := wrongFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: devstack token [flags] USER   (e.g. alice, or erin@fabrikam.handoff.test)\n       devstack token --app operator --for audit")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package said why
	}
	stateDir := *state
	if stateDir == "" {
		p, err := findPaths()
		if err != nil {
			return err
		}
		stateDir = p.state
	}
	info, err := readRunInfo(stateDir)
	if err != nil {
		return err
	}
	hc, err := httpClient(info.CAFile)
	if err != nil {
		return err
	}
	if err := answers(ctx, info.Entra, hc); err != nil {
		return fmt.Errorf("the Entra ID emulator at %s does not answer (%v): is `make run` running?", info.Entra, err)
	}
	var token string
	switch {
	case wrong.any():
		token, err = wrongToken(ctx, hc, info.Entra, wrong, fs.Args(), *app, *api)
	case *app != "":
		if fs.NArg() != 0 {
			return errors.New("an app-only token (--app) names no user")
		}
		token, err = appToken(ctx, hc, info.Entra, *app, *api)
	case fs.NArg() == 1:
		token, err = userToken(ctx, hc, info.Entra, fs.Arg(0), *password, *api)
	default:
		return errors.New("name one user after the flags, e.g. `devstack token alice` or `devstack token --for notification alice`")
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, token)
	return err
}

// userToken signs user in with the password grant for the Task API and,
// for the Notification Service, exchanges that token On-Behalf-Of.
func userToken(ctx context.Context, hc *http.Client, entraURL, user, password, api string) (string, error) {
	if api == "" {
		api = forTask
	}
	if api != forTask && api != forNotification {
		return "", fmt.Errorf("--for %q: a user's token is for task or notification (the Audit Service takes app-only tokens: --app operator --for audit)", api)
	}
	if !strings.Contains(user, "@") {
		user += "@home.handoff.test"
	}
	domain := user[strings.LastIndex(user, "@")+1:]
	pc, err := public.New(entra.DevClientID, public.WithAuthority(entraURL+"/"+domain),
		public.WithHTTPClient(hc), public.WithInstanceDiscovery(false))
	if err != nil {
		return "", err
	}
	scope := "api://" + entra.TaskAPIClientID + "/" + entra.ScopeAccessAsUser
	//lint:ignore SA1019 the password grant is deprecated; it signs a test user in without a browser.
	a, err := pc.AcquireTokenByUsernamePassword(ctx, []string{scope}, user, password)
	if err != nil {
		return "", fmt.Errorf("sign in as %s: %w", user, stsError(err))
	}
	if api == forTask {
		return a.AccessToken, nil
	}
	claims, err := decode(a.AccessToken)
	if err != nil {
		return "", err
	}
	tid, _ := claims["tid"].(string)
	cc, err := confidentialClient(hc, entraURL+"/"+tid, daemonApps["task"].clientID, daemonApps["task"].secret)
	if err != nil {
		return "", err
	}
	b, err := cc.AcquireTokenOnBehalfOf(ctx, a.AccessToken, []string{entra.NotificationClientID + "/.default"})
	if err != nil {
		return "", fmt.Errorf("On-Behalf-Of %s for the Notification Service, as the Task API: %w", user, stsError(err))
	}
	return b.AccessToken, nil
}

// appToken is an app-only token for the Audit Service, with client
// credentials at the home tenant.
func appToken(ctx context.Context, hc *http.Client, entraURL, app, api string) (string, error) {
	if api == "" {
		api = forAudit
	}
	if api != forAudit {
		return "", fmt.Errorf("--for %q: app-only tokens are for the Audit Service (--for audit); the Task API and the Notification Service take users' tokens", api)
	}
	d, ok := daemonApps[app]
	if !ok {
		return "", fmt.Errorf("--app %q: the apps with a dev secret are operator (AuditLog.Read) and task (AuditLog.Write)", app)
	}
	cc, err := confidentialClient(hc, entraURL+"/"+entra.HomeTenantID, d.clientID, d.secret)
	if err != nil {
		return "", err
	}
	c, err := cc.AcquireTokenByCredential(ctx, []string{entra.AuditClientID + "/.default"})
	if err != nil {
		return "", fmt.Errorf("client credentials as the %s app: %w", app, stsError(err))
	}
	return c.AccessToken, nil
}

func confidentialClient(hc *http.Client, authority, clientID, secret string) (confidential.Client, error) {
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		return confidential.Client{}, err
	}
	return confidential.New(authority, clientID, cred, confidential.WithHTTPClient(hc), confidential.WithInstanceDiscovery(false))
}

// stsError is the emulator's answer in a failed MSAL call, "AADSTS…:
// message (error)", rather than MSAL's dump of the whole HTTP reply; other
// errors are returned as they are. MSAL's user realm lookup fails with
// "unknown account type" for a user the directory does not hold.
func stsError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "unknown account type") {
		return fmt.Errorf("%w (the emulator's directory has no such user: make run lists them)", err)
	}
	i := strings.Index(msg, "{")
	if i < 0 {
		return err
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal([]byte(msg[i:]), &body) != nil || body.Description == "" {
		return err
	}
	if j := strings.Index(body.Description, " Trace ID:"); j > 0 {
		body.Description = body.Description[:j]
	}
	return fmt.Errorf("%s (%s)", body.Description, body.Error)
}
