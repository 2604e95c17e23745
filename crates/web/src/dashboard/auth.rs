//! Logging in: argon2 password hashes, sessions in HttpOnly SameSite cookies (only a SHA-256 of
//! the token is stored), a CSRF token per session that every state-changing form carries (and a
//! double-submit cookie for the login and setup forms, before there is a session), a rate
//! limit on failed logins per address and per email, and the one-time setup link that lets the
//! first visitor of a new install set the admin password.

use std::sync::Arc;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{blocking, render, PageError, PageResult};
use crate::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "sentry_session";
/// The pre-session CSRF cookie of the login and setup forms.
pub const LOGIN_CSRF_COOKIE: &str = "sentry_csrf";
/// How long a login lasts.
const SESSION_TTL_SECS: f64 = 14.0 * 86400.0;
/// Failed logins allowed per address and per email within [`LOGIN_WINDOW`].
pub const LOGIN_ATTEMPTS: usize = 10;
const LOGIN_WINDOW: Duration = Duration::from_secs(600);
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes a password for storing (Argon2id, a random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| format!("could not hash the password: {e}"))
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checks a new password: long enough, and the same twice when confirmed.
pub fn check_new_password(password: &str, again: Option<&str>) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if again.is_some_and(|a| a != password) {
        return Err("the two passwords differ".into());
    }
    Ok(())
}

/// 32 random bytes as 64 hex digits, from the operating system's generator.
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the operating system's random number generator");
    hex::encode(buf)
}

/// What the store keeps of a secret token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a one-time setup link's token and records its hash; returns the token.
pub fn new_setup_token(store: &Arc<dyn store::Store>) -> store::Result<String> {
    let token = random_token();
    store.create_setup_token(&token_hash(&token), 7.0 * 86400.0)?;
    Ok(token)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: Option<u64>, secure: bool) {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A path on this site to go back to after logging in; anything else becomes the dashboard.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.starts_with("/login") => n.to_string(),
        _ => "/dashboard".to_string(),
    }
}

/// The logged-in user of a request. Extracting it from a request without a live session sends
/// the browser to the login page.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: store::User,
    /// The token every form of this session carries.
    pub csrf: String,
    token_hash: String,
}

impl CurrentUser {
    /// Refuses a state-changing request whose form lacks this session's CSRF token, or that
    /// comes from another site.
    pub fn check_csrf(&self, form_token: &str, headers: &HeaderMap) -> PageResult<()> {
        check_origin(headers)?;
        if form_token.is_empty() || !constant_time_eq(form_token, &self.csrf) {
            return Err(PageError::Forbidden(
                "the form was missing its security token or it was out of date; go back, reload the page and try again".into(),
            ));
        }
        Ok(())
    }

    pub fn require_admin(&self) -> PageResult<()> {
        if self.user.is_admin { Ok(()) } else { Err(PageError::Forbidden("only administrators can do this".into())) }
    }
}

/// A POST whose `Origin` names another host than the one it was sent to is refused.
fn check_origin(headers: &HeaderMap) -> PageResult<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    if origin == "null" || origin_host != host {
        return Err(PageError::Forbidden(format!("a form from {origin} can't change anything here")));
    }
    Ok(())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else { return Err(PageError::Login { next }) };
        let hash = token_hash(&token);
        let store = state.store.clone();
        let h = hash.clone();
        let session = blocking(move || Ok(store.session(&h)?)).await?;
        match session {
            Some(s) => Ok(CurrentUser { user: s.user, csrf: s.csrf_token, token_hash: hash }),
            None => Err(PageError::Login { next }),
        }
    }
}

/// The address of the client, when the server knows it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Failed logins per address and per email, forgotten after [`LOGIN_WINDOW`].
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// `Err(seconds to wait)` when any of `keys` has too many recent failures.
    fn check(&self, keys: &[String]) -> Result<(), u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < LOGIN_WINDOW);
            !times.is_empty()
        });
        for k in keys {
            if let Some(times) = map.get(k)
                && times.len() >= LOGIN_ATTEMPTS
            {
                let oldest = times.iter().min().copied().unwrap_or(now);
                return Err(LOGIN_WINDOW.saturating_sub(now.duration_since(oldest)).as_secs().max(1));
            }
        }
        Ok(())
    }

    fn fail(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            map.entry(k.clone()).or_default().push(Instant::now());
        }
    }

    fn succeed(&self, email_key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(email_key);
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    email: String,
    error: Option<String>,
    valid: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The login form's CSRF token: the one in the browser's cookie, or a new one (set on answer).
fn login_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_CSRF_COOKIE).filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(c) => (c, false),
        None => (random_token(), true),
    }
}

fn with_login_csrf(page: PageResult, csrf: &str, fresh: bool, secure: bool) -> PageResult {
    let mut resp = page?;
    if fresh {
        set_cookie(&mut resp, LOGIN_CSRF_COOKIE, csrf, None, secure);
    }
    Ok(resp)
}

/// `GET /login`
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> PageResult {
    let (csrf, fresh) = login_csrf(&headers);
    let page = LoginPage { csrf: csrf.clone(), next: safe_next(q.next.as_deref()), email: String::new(), error: None };
    with_login_csrf(render(&page), &csrf, fresh, state.dashboard.secure_cookies)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /login`
pub async fn login(State(state): State<AppState>, ClientIp(ip): ClientIp, headers: HeaderMap, Form(form): Form<LoginForm>) -> PageResult {
    check_origin(&headers)?;
    let (csrf, fresh) = login_csrf(&headers);
    if fresh || !constant_time_eq(&form.csrf, &csrf) {
        return Err(PageError::Forbidden(
            "the login form was missing its security token; reload the login page (cookies must be enabled) and try again".into(),
        ));
    }
    let email_key = format!("email:{}", form.email.trim().to_lowercase());
    let mut keys = vec![email_key.clone()];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    if let Err(wait) = state.dashboard.logins.check(&keys) {
        return Err(PageError::TooManyRequests(format!(
            "too many failed logins; wait {} minute(s) and try again",
            wait.div_ceil(60)
        )));
    }
    let store = state.store.clone();
    let (email, password) = (form.email.clone(), form.password.clone());
    let found = blocking(move || {
        let found = store.user_for_login(&email)?;
        // Hash anyway when there is no such user, so timing does not tell which emails exist.
        let ok = match &found {
            Some((_, hash)) => verify_password(&password, hash),
            None => {
                static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
                let _ = verify_password(&password, dummy);
                false
            }
        };
        if !ok {
            return Ok(None);
        }
        let Some((user, _)) = found else { return Ok(None) };
        let token = random_token();
        store.create_session(user.id, &token_hash(&token), &random_token(), SESSION_TTL_SECS)?;
        Ok(Some(token))
    })
    .await?;
    let Some(token) = found else {
        state.dashboard.logins.fail(&keys);
        let page = LoginPage {
            csrf: csrf.clone(),
            next: safe_next(form.next.as_deref()),
            email: form.email,
            error: Some("That email and password don't match an account.".into()),
        };
        let mut resp = render(&page)?;
        *resp.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
        return Ok(resp);
    };
    state.dashboard.logins.succeed(&email_key);
    let mut resp = Redirect::to(&safe_next(form.next.as_deref())).into_response();
    set_cookie(&mut resp, SESSION_COOKIE, &token, Some(SESSION_TTL_SECS as u64), state.dashboard.secure_cookies);
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /logout`
pub async fn logout(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, Form(form): Form<CsrfForm>) -> PageResult {
    user.check_csrf(&form.csrf, &headers)?;
    let store = state.store.clone();
    let hash = user.token_hash.clone();
    blocking(move || Ok(store.delete_session(&hash)?)).await?;
    let mut resp = Redirect::to("/login").into_response();
    set_cookie(&mut resp, SESSION_COOKIE, "", Some(0), state.dashboard.secure_cookies);
    Ok(resp)
}

/// `GET /setup/{token}`: the first visitor sets the admin's email and password.
pub async fn setup_page(State(state): State<AppState>, headers: HeaderMap, Path(token): Path<String>) -> PageResult {
    let (csrf, fresh) = login_csrf(&headers);
    let store = state.store.clone();
    let hash = token_hash(&token);
    let valid = blocking(move || Ok(store.setup_token_valid(&hash)?)).await?;
    let page = SetupPage { csrf: csrf.clone(), token, email: String::new(), error: None, valid };
    with_login_csrf(render(&page), &csrf, fresh, state.dashboard.secure_cookies)
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /setup/{token}`: creates the admin and logs them in.
pub async fn setup(State(state): State<AppState>, headers: HeaderMap, Path(token): Path<String>, Form(form): Form<SetupForm>) -> PageResult {
    check_origin(&headers)?;
    let (csrf, fresh) = login_csrf(&headers);
    if fresh || !constant_time_eq(&form.csrf, &csrf) {
        return Err(PageError::Forbidden("the form was missing its security token; reload the page and try again".into()));
    }
    if let Err(problem) = check_new_password(&form.password, Some(&form.password_again)) {
        let page = SetupPage { csrf, token, email: form.email, error: Some(problem), valid: true };
        return render(&page);
    }
    let store = state.store.clone();
    let hash = token_hash(&token);
    let (email, password) = (form.email.clone(), form.password.clone());
    let result = blocking(move || {
        let password_hash = hash_password(&password).map_err(PageError::Internal)?;
        match store.use_setup_token(&hash, &email, &password_hash) {
            Ok(user) => {
                let session = random_token();
                store.create_session(user.id, &token_hash(&session), &random_token(), SESSION_TTL_SECS)?;
                Ok(Ok(session))
            }
            Err(store::StoreError::Invalid(why)) => Ok(Err(why)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match result {
        Ok(session) => {
            let mut resp = Redirect::to("/dashboard").into_response();
            set_cookie(&mut resp, SESSION_COOKIE, &session, Some(SESSION_TTL_SECS as u64), state.dashboard.secure_cookies);
            Ok(resp)
        }
        Err(why) => render(&SetupPage { csrf, token, email: form.email, error: Some(why), valid: true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/p/shop/?sort=freq")), "/p/shop/?sort=freq");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", "/login?next=/x"] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad}");
        }
    }

    #[test]
    fn limiter_counts_failures_per_key() {
        let l = LoginLimiter::default();
        let keys = vec!["email:a".to_string()];
        for _ in 0..LOGIN_ATTEMPTS {
            assert!(l.check(&keys).is_ok());
            l.fail(&keys);
        }
        assert!(l.check(&keys).is_err());
        assert!(l.check(&["email:b".to_string()]).is_ok());
        l.succeed("email:a");
        assert!(l.check(&keys).is_ok());
    }
}
