import {
  AccountInfo,
  AuthenticationResult,
  InteractionRequiredAuthError,
  IPublicClientApplication,
  createStandardPublicClientApplication,
} from "@azure/msal-browser";
import { config } from "./config";

let msal: IPublicClientApplication;

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
    if (e instanceof InteractionRequiredAuthError) {
      await msal.acquireTokenRedirect({ scopes: [config.taskScope], account });
      throw new RedirectingError();
    }
    throw e;
  }
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
