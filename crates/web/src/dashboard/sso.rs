//! Single sign-on with OpenID Connect: `GET /sso/{org}` sends the browser to the
//! organisation's provider (found by discovery) with the authorization code flow, PKCE, a
//! `state` bound to this browser by a cookie, and a nonce; `GET /sso/callback` takes the code
//! back once (a state is used at most once, within ten minutes), exchanges it, and checks the
//! ID token against the provider's keys (signature, issuer, audience, expiry, nonce). The
//! verified email logs its user in; a first sign-in creates the member with the organisation's
//! default role, or is refused unless the email's domain is allowed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use store::{Organization, SsoConfig};

use super::auth::{cookie, logged_in, set_cookie, start_session};
use super::{blocking, PageError, PageResult};
use crate::AppState;

/// The cookie that binds a sign-in's `state` to the browser that started it.
const SSO_COOKIE: &str = "sentry_sso";
/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins under way at once (the oldest are dropped).
const PENDING_MAX: usize = 10_000;
/// How long a request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in under way, by its state.
struct Pending {
    org: String,
    nonce: String,
    verifier: String,
    at: Instant,
}

/// The sign-ins under way.
#[derive(Default)]
pub struct SsoLogins {
    pending: Mutex<HashMap<String, Pending>>,
}

impl SsoLogins {
    fn put(&self, state: String, p: Pending) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.at.elapsed() < PENDING_TTL);
        if map.len() >= PENDING_MAX
            && let Some(oldest) = map.iter().min_by_key(|(_, p)| p.at).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, p);
    }

    /// Takes a sign-in out (so that its state can't be used again).
    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(state).filter(|p| p.at.elapsed() < PENDING_TTL)
    }
}

/// Why a sign-in was refused, for the person (the details go to the log).
fn refused(why: impl std::fmt::Display) -> PageError {
    PageError::Forbidden(format!("single sign-on failed: {why}"))
}

/// Requests to the provider: reqwest with rustls (ring), no redirects followed.
async fn send(req: HttpRequest) -> Result<HttpResponse, ProviderError> {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    let client = CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(PROVIDER_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ProviderError(e.clone()))?;
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| ProviderError(e.to_string()))?;
    let mut out = axum::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await.map_err(|e| ProviderError(e.to_string()))?;
    out.body(bytes.to_vec()).map_err(|e| ProviderError(e.to_string()))
}

#[derive(Debug)]
struct ProviderError(String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

/// The organisation and its single sign-on settings.
async fn org_sso(state: &AppState, slug: &str) -> PageResult<(Organization, SsoConfig)> {
    let store = state.store.clone();
    let slug = slug.to_string();
    blocking(move || {
        let none = || PageError::NotFound(format!("the organisation \"{slug}\" has no single sign-on"));
        let org = store.organization_by_slug(&slug)?.ok_or_else(none)?;
        let sso = store.sso(org.id)?.ok_or_else(none)?;
        Ok((org, sso))
    })
    .await
}

/// A client made from a discovery document: authorization endpoint set, token and user-info
/// endpoints maybe.
type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The provider's client for this organisation, from its discovery document.
async fn client(state: &AppState, sso: &SsoConfig) -> PageResult<Client> {
    let issuer = IssuerUrl::new(sso.issuer.clone()).map_err(|e| refused(format!("the issuer URL is not valid ({e})")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &send).await.map_err(|e| {
        tracing::warn!(issuer = %sso.issuer, error = %e, "OpenID discovery failed");
        refused("the identity provider could not be reached; try again later")
    })?;
    let redirect = RedirectUrl::new(format!("{}/sso/callback", state.public_url)).map_err(|e| PageError::Internal(e.to_string()))?;
    Ok(CoreClient::from_provider_metadata(metadata, ClientId::new(sso.client_id.clone()), Some(ClientSecret::new(sso.client_secret.clone())))
        .set_redirect_uri(redirect))
}

#[derive(Deserialize)]
pub struct OrgQuery {
    #[serde(default)]
    org: String,
}

/// `GET /login/sso?org=…`: the login page's single sign-on form, to `/sso/{org}`.
pub async fn choose(Query(q): Query<OrgQuery>) -> Response {
    Redirect::to(&super::paths::sso(q.org.trim())).into_response()
}

/// `GET /sso/{org}`: off to the provider.
pub async fn start(State(state): State<AppState>, Path(org): Path<String>) -> PageResult {
    let (org, sso) = org_sso(&state, &org).await?;
    let client = client(&state, &sso).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let key = csrf.secret().clone();
    state.dashboard.sso.put(
        key.clone(),
        Pending { org: org.slug, nonce: nonce.secret().clone(), verifier: verifier.secret().clone(), at: Instant::now() },
    );
    let mut resp = Redirect::to(url.as_str()).into_response();
    set_cookie(&mut resp, SSO_COOKIE, &key, Some(PENDING_TTL.as_secs()), state.dashboard.secure_cookies);
    Ok(resp)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /sso/callback?code=…&state=…`: the provider's answer.
pub async fn callback(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<Callback>) -> PageResult<Response> {
    if let Some(e) = q.error {
        return Err(refused(format!("the identity provider said \"{e}\"")));
    }
    let key = q.state.unwrap_or_default();
    // The state must be this browser's, and unused.
    if cookie(&headers, SSO_COOKIE).as_deref() != Some(key.as_str()) {
        return Err(refused("this sign-in was not started in this browser; start again"));
    }
    let pending = state.dashboard.sso.take(&key).ok_or_else(|| refused("this sign-in was used already or took too long; start again"))?;
    let (org, sso) = org_sso(&state, &pending.org).await?;
    let client = client(&state, &sso).await?;
    let code = AuthorizationCode::new(q.code.unwrap_or_default());
    let tokens = client
        .exchange_code(code)
        .map_err(|e| refused(format!("the identity provider has no token endpoint ({e})")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&send)
        .await
        .map_err(|e| {
            tracing::warn!(org = %org.slug, error = %e, "OpenID code exchange failed");
            refused("the identity provider refused the sign-in")
        })?;
    let id_token = tokens.id_token().ok_or_else(|| refused("the identity provider sent no ID token"))?;
    let claims = id_token.claims(&client.id_token_verifier(), &Nonce::new(pending.nonce)).map_err(|e| {
        tracing::warn!(org = %org.slug, error = %e, "an ID token was refused");
        refused(format!("the ID token is not valid ({e})"))
    })?;
    let email = claims.email().map(|e| e.as_str().to_string()).ok_or_else(|| refused("the ID token carries no email"))?;
    if claims.email_verified() != Some(true) {
        return Err(refused(format!("the identity provider has not verified {email}")));
    }
    let store = state.store.clone();
    let session = blocking(move || {
        let existing = store.user_for_login(&email)?.map(|(u, _)| u);
        let member = match existing {
            Some(u) if store.memberships(u.id)?.iter().any(|m| m.org.id == org.id) => Some(u),
            _ => None,
        };
        let user = match member {
            Some(user) => user,
            None => {
                if !sso.admits(&email) {
                    return Err(refused(format!("{email} is not a member of {}, and its domain may not join by itself", org.name)));
                }
                let user = match store.user_for_login(&email)? {
                    Some((user, _)) => user,
                    // No password: this user signs in through the provider.
                    None => store.create_user(&email, "!single sign-on", false)?,
                };
                let team = store.teams(org.id)?.first().map(|t| t.id);
                store.add_member(org.id, user.id, sso.default_role, team)?;
                store.record_audit(org.id, &email, "member.join", &format!("{email} as {} by single sign-on", sso.default_role))?;
                user
            }
        };
        start_session(&store, user.id)
    })
    .await?;
    let mut resp = logged_in(&state, "/dashboard", &session);
    set_cookie(&mut resp, SSO_COOKIE, "", Some(0), state.dashboard.secure_cookies);
    Ok(resp)
}
