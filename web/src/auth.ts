import {
  AccountInfo,
  AuthenticationResult,
  BrowserAuthError,
  BrowserAuthErrorCodes,
  InteractionRequiredAuthError,
  IPublicClientApplication,
  createStandardPublicClientApplication,
} from "@azure/msal-browser";
import { config } from "./config";

let msal: IPublicClientApplication;

/**
 * In MSAL's hidden iframe (silent renewal when a refresh token is refused:
 * prompt=none on the Entra session), Entra sends the answer to this page's
 * URL; MSAL.js 5 reads it only when that page hands it to the main frame
 * (the redirect bridge). True when this page did so and is done.
 */
export async function relaySilentResponse(): Promise<boolean> {
  if (window.parent === window || !/[#&?]state=/.test(window.location.hash + window.location.search)) return false;
  const { broadcastResponseToMainFrame } = await import("@azure/msal-browser/redirect-bridge");
  await broadcastResponseToMainFrame();
  return true;
}

/** Starts MSAL and completes a redirect back from Entra, if this is one. */
export async function initAuth(): Promise<AccountInfo | null> {
  msal = await createStandardPublicClientApplication({
    auth: {
      clientId: config.clientId,
      authority: config.authority,
      knownAuthorities: config.knownAuthorities,
      redirectUri: config.redirectUri,
      postLogoutRedirectUri: config.redirectUri,
    },
    cache: { cacheLocation: "sessionStorage" },
  });
  const result: AuthenticationResult | null = await msal.handleRedirectPromise();
  if (result?.account) {
    msal.setActiveAccount(result.account);
  }
  const account = msal.getActiveAccount() ?? msal.getAllAccounts()[0] ?? null;
  if (account) msal.setActiveAccount(account);
  return account;
}

/** Sends the browser to Entra's sign-in page (authorization code + PKCE). */
export function signIn(): Promise<void> {
  return msal.loginRedirect({ scopes: [config.taskScope] });
}

export function signOut(): Promise<void> {
  return msal.logoutRedirect({ account: msal.getActiveAccount() ?? undefined });
}

/** Thrown when the page is leaving for Entra: nothing more to do here. */
export class RedirectingError extends Error {
  constructor() {
    super("Redirecting to sign in…");
  }
}

/**
 * Token A for the Task API: from the cache, refreshed silently when it
 * expires; when Entra wants the user (expired session, new consent, a
 * claims challenge), the browser goes to Entra and comes back.
 */
export async function taskApiToken(forceRefresh = false): Promise<string> {
  const account = msal.getActiveAccount();
  if (!account) {
    await signIn();
    throw new RedirectingError();
  }
  try {
    const r = await msal.acquireTokenSilent({ scopes: [config.taskScope], account, forceRefresh });
    return r.accessToken;
  } catch (e) {
    if (e instanceof InteractionRequiredAuthError || silentRenewalTimedOut(e)) {
      await msal.acquireTokenRedirect({ scopes: [config.taskScope], account });
      throw new RedirectingError();
    }
    throw e;
  }
}

/**
 * The silent iframe got no answer in time (a browser that blocks the
 * frame, say): only the user can renew the session now.
 */
function silentRenewalTimedOut(e: unknown): boolean {
  return e instanceof BrowserAuthError && e.errorCode === BrowserAuthErrorCodes.timedOut;
}

/**
 * Grants what a downstream call reported missing (consent_required or
 * interaction_required from the Task API): back to Entra for the Task API's
 * scope with the claims challenge, asking for consent, which covers the
 * APIs the Task API calls on the user's behalf (combined consent).
 */
export async function grantConsent(claims?: string): Promise<void> {
  const account = msal.getActiveAccount() ?? undefined;
  await msal.acquireTokenRedirect({
    scopes: [config.taskScope],
    account,
    claims: claims || undefined,
    prompt: "consent",
  });
}
