//! Logging in: argon2 password hashes, sessions in HttpOnly SameSite cookies (only a SHA-256 of
//! the token is stored), a CSRF token per session that every state-changing form carries (and a
//! double-submit cookie for the login and setup forms, before there is a session), a rate
//! limit on failed logins per (email, address) and per address, counted before the password is
//! hashed, a small pool that bounds how many hashes run at once, and the one-time setup link
//! that lets the first visitor of a new install set the admin password.

use std::sync::Arc;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
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
pub(super) const SESSION_TTL_SECS: f64 = 14.0 * 86400.0;
/// Failed logins allowed per email from one address within [`LOGIN_WINDOW`].
pub const LOGIN_ATTEMPTS: usize = 10;
/// Failed logins allowed per address, whatever the emails, within [`LOGIN_WINDOW`].
pub const LOGIN_ATTEMPTS_PER_ADDRESS: usize = 50;
/// How many password hashes may run at once by default (each Argon2id hash holds about 19 MiB).
pub const HASH_SLOTS: usize = 2;
/// How long a login waits for a place among the hash slots before it is answered 429.
const HASH_WAIT: Duration = Duration::from_secs(3);
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

pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
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

pub(super) fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: Option<u64>, secure: bool) {
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

/// A path on this site to go back to after logging in; anything else becomes `/`.
///
/// Only a path that starts with one `/` (not `//` or `/\`, which browsers take for another
/// host) and holds no control character or backslash, as sent or once percent-decoded: a tab
/// or a newline is dropped by some clients (`/\t/host` becomes `//host`) and a CR or LF can't
/// go in a `Location` header at all.
fn safe_next(next: Option<&str>) -> String {
    let Some(n) = next else { return "/".into() };
    let decoded = percent_decode(n);
    let ok = |p: &str| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.starts_with("/\\")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
            && !p.starts_with("/login")
    };
    if ok(n) && ok(&decoded) { n.to_string() } else { "/".into() }
}

/// `%XX` escapes decoded once (an invalid escape is kept as it is; bytes that are not UTF-8
/// become U+FFFD).
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The logged-in user of a request. Extracting it from a request without a live session sends
/// the browser to the login page.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: store::User,
    /// The token every form of this session carries.
    pub csrf: String,
    token_hash: String,
    /// The server's public URL is https: forms must come from an https page.
    https: bool,
}

impl CurrentUser {
    /// Refuses a state-changing request whose form lacks this session's CSRF token, or that
    /// comes from another site.
    pub fn check_csrf(&self, form_token: &str, headers: &HeaderMap) -> PageResult<()> {
        check_origin(headers, self.https)?;
        if form_token.is_empty() || !constant_time_eq(form_token, &self.csrf) {
            return Err(PageError::Forbidden(
                "the form was missing its security token or it was out of date; go back, reload the page and try again".into(),
            ));
        }
        Ok(())
    }

    /// The hash of the session's token (what the store knows the session by).
    pub(crate) fn session_hash(&self) -> &str {
        &self.token_hash
    }
}

/// A POST whose `Origin` is not this server — another host, or another scheme than the public
/// URL's (`https` when `https`, else `http`) — is refused.
pub(super) fn check_origin(headers: &HeaderMap, https: bool) -> PageResult<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let scheme = if https { "https" } else { "http" };
    if origin != format!("{scheme}://{host}") {
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
            Some(s) => Ok(CurrentUser {
                user: s.user,
                csrf: s.csrf_token,
                token_hash: hash,
                https: state.dashboard.secure_cookies,
            }),
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

/// Login attempts per (email, address) and per address, forgotten after [`LOGIN_WINDOW`], and
/// the pool that bounds how many password hashes run at once.
///
/// An attempt is counted before its password is hashed (a reservation) and given back when the
/// password was right, so concurrent wrong passwords can't get more hashes than the limit. The
/// counter of an email is kept per address: someone guessing from one address slows down only
/// that address, and the owner can still log in from another.
pub struct LoginLimiter {
    attempts: Mutex<HashMap<String, Vec<Instant>>>,
    hashing: Arc<tokio::sync::Semaphore>,
    hashes: AtomicU64,
    /// The windows every node shares, when there are (Redis); this node's own meanwhile.
    shared: std::sync::OnceLock<Arc<dyn SharedWindows>>,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter::new(HASH_SLOTS)
    }
}

impl LoginLimiter {
    /// A limiter with `hash_slots` password hashes at once (at least one).
    pub fn new(hash_slots: usize) -> LoginLimiter {
        LoginLimiter {
            attempts: Mutex::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(hash_slots.max(1))),
            hashes: AtomicU64::new(0),
            shared: std::sync::OnceLock::new(),
        }
    }
}

/// Sliding windows of login attempts that every node of an installation shares, so that
/// guessing passwords through several nodes is limited as through one.
pub trait SharedWindows: Send + Sync {
    /// Adds `member` to each `(key, limit)` window of `window` unless one is full:
    /// `Ok(Err(seconds to wait))` then; `Err(WindowsAway)` when the windows can't be reached.
    fn reserve(&self, keys: &[(String, usize)], window: Duration, member: &str) -> Result<Result<(), u64>, WindowsAway>;
    /// Takes `member` out of the windows of `keys` again.
    fn release(&self, keys: &[String], member: &str);
    /// Empties the window of `key`.
    fn forget(&self, key: &str);
}

/// The shared windows can't be reached now: count on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowsAway;

/// An attempt counted before its password is checked. Dropped, it is given back; kept with
/// [`Reservation::keep`], it stays counted as a failure.
pub(crate) struct Reservation<'a> {
    limiter: &'a LoginLimiter,
    keys: Vec<String>,
    at: Instant,
    kept: bool,
    /// Its member in the shared windows, when it was counted there.
    shared: Option<String>,
}

impl Reservation<'_> {
    /// The attempt failed: it stays counted until the window forgets it.
    pub(super) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if let (Some(member), Some(shared)) = (&self.shared, self.limiter.shared.get()) {
            shared.release(&self.keys, member);
            return;
        }
        let mut map = self.limiter.attempts.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(times) = map.get_mut(k) {
                if let Some(i) = times.iter().position(|t| *t == self.at) {
                    times.swap_remove(i);
                }
                if times.is_empty() {
                    map.remove(k);
                }
            }
        }
    }
}

/// The keys and limits of one login attempt: the email from this address, and the address.
pub(super) fn login_keys(email: &str, ip: Option<IpAddr>) -> Vec<(String, usize)> {
    let email = email.trim().to_lowercase();
    let ip = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    vec![(format!("email:{email} ip:{ip}"), LOGIN_ATTEMPTS), (format!("ip:{ip}"), LOGIN_ATTEMPTS_PER_ADDRESS)]
}

impl LoginLimiter {
    /// Counts an attempt for every key, or `Err(seconds to wait)` when one of them is at its
    /// limit (then nothing is counted).
    pub(crate) fn reserve(&self, keys: &[(String, usize)]) -> Result<Reservation<'_>, u64> {
        if let Some(shared) = self.shared.get() {
            let member = format!("{:?}-{}", std::time::SystemTime::now(), self.hashes.load(Ordering::Relaxed));
            match shared.reserve(keys, LOGIN_WINDOW, &member) {
                Ok(Ok(())) => {
                    let keys = keys.iter().map(|(k, _)| k.clone()).collect();
                    return Ok(Reservation { limiter: self, keys, at: Instant::now(), kept: false, shared: Some(member) });
                }
                Ok(Err(wait)) => return Err(wait),
                Err(WindowsAway) => {} // count here meanwhile
            }
        }
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < LOGIN_WINDOW);
            !times.is_empty()
        });
        for (k, limit) in keys {
            if let Some(times) = map.get(k)
                && times.len() >= *limit
            {
                let oldest = times.iter().min().copied().unwrap_or(now);
                return Err(LOGIN_WINDOW.saturating_sub(now.duration_since(oldest)).as_secs().max(1));
            }
        }
        for (k, _) in keys {
            map.entry(k.clone()).or_default().push(now);
        }
        Ok(Reservation { limiter: self, keys: keys.iter().map(|(k, _)| k.clone()).collect(), at: now, kept: false, shared: None })
    }

    /// The right password from this address: its email's failures from there are forgotten.
    fn succeed(&self, reservation: Reservation<'_>) {
        let email_key = reservation.keys.first().cloned();
        let shared = reservation.shared.is_some();
        drop(reservation);
        if let Some(k) = email_key {
            match self.shared.get() {
                Some(s) if shared => s.forget(&k),
                _ => {
                    self.attempts.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                }
            }
        }
    }

    /// From now on, count in `windows`, shared with the other nodes (once).
    pub fn share(&self, windows: Arc<dyn SharedWindows>) {
        let _ = self.shared.set(windows);
    }

    /// A place in the hashing pool, or `None` when every place stayed taken for [`HASH_WAIT`].
    pub(super) async fn hash_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = tokio::time::timeout(HASH_WAIT, self.hashing.clone().acquire_owned()).await.ok()?.ok()?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        Some(permit)
    }

    /// Passwords hashed or checked for a login or the setup form since start.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }
}

/// A 429 page with `Retry-After`.
pub(super) fn too_many(message: String, retry_after: u64) -> Response {
    let mut resp = PageError::TooManyRequests(message).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// What a login answers when the hashing pool stayed full.
pub(super) fn busy() -> Response {
    too_many("too many logins at once, try again in a few seconds".into(), 2)
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
pub(super) fn login_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_CSRF_COOKIE).filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(c) => (c, false),
        None => (random_token(), true),
    }
}

pub(super) fn with_login_csrf(page: PageResult, csrf: &str, fresh: bool, secure: bool) -> PageResult {
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
    check_origin(&headers, state.dashboard.secure_cookies)?;
    let (csrf, fresh) = login_csrf(&headers);
    if fresh || !constant_time_eq(&form.csrf, &csrf) {
        return Err(PageError::Forbidden(
            "the login form was missing its security token; reload the login page (cookies must be enabled) and try again".into(),
        ));
    }
    let limiter = &state.dashboard.logins;
    let reservation = match limiter.reserve(&login_keys(&form.email, ip)) {
        Ok(r) => r,
        Err(wait) => {
            return Ok(too_many(format!("too many failed logins; wait {} minute(s) and try again", wait.div_ceil(60)), wait));
        }
    };
    let Some(slot) = limiter.hash_slot().await else { return Ok(busy()) };
    let store = state.store.clone();
    let (email, password) = (form.email.clone(), form.password.clone());
    let found = blocking(move || {
        let _slot = slot;
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
        // An organisation that requires single sign-on: its members (but owners) sign in there.
        for m in store.memberships(user.id)? {
            if m.role < store::Role::Owner && store.sso(m.org.id)?.is_some_and(|s| s.required) {
                return Err(PageError::Forbidden(format!(
                    "{} signs in with single sign-on: go to {}",
                    m.org.name,
                    super::paths::sso(&m.org.slug)
                )));
            }
        }
        Ok(Some(start_session(&store, user.id)?))
    })
    .await?;
    let Some(token) = found else {
        reservation.keep();
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
    limiter.succeed(reservation);
    Ok(logged_in(&state, &safe_next(form.next.as_deref()), &token))
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

/// Checks a form sent before there is a session (login, setup, invitation): from this site,
/// with the double-submit CSRF token of its cookie. Returns that token.
pub(super) fn check_pre_session_form(state: &AppState, headers: &HeaderMap, form_csrf: &str) -> PageResult<String> {
    check_origin(headers, state.dashboard.secure_cookies)?;
    let (csrf, fresh) = login_csrf(headers);
    if fresh || !constant_time_eq(form_csrf, &csrf) {
        return Err(PageError::Forbidden("the form was missing its security token; reload the page and try again".into()));
    }
    Ok(csrf)
}

/// Starts a session for a user; returns the cookie's token.
pub(super) fn start_session(store: &Arc<dyn store::Store>, user: store::UserId) -> PageResult<String> {
    let session = random_token();
    store.create_session(user, &token_hash(&session), &random_token(), SESSION_TTL_SECS)?;
    Ok(session)
}

/// Goes to `target` with the session cookie set.
pub(super) fn logged_in(state: &AppState, target: &str, session: &str) -> Response {
    let mut resp = Redirect::to(target).into_response();
    set_cookie(&mut resp, SESSION_COOKIE, session, Some(SESSION_TTL_SECS as u64), state.dashboard.secure_cookies);
    resp
}

/// `POST /setup/{token}`: creates the admin and logs them in.
pub async fn setup(State(state): State<AppState>, headers: HeaderMap, Path(token): Path<String>, Form(form): Form<SetupForm>) -> PageResult {
    let csrf = check_pre_session_form(&state, &headers, &form.csrf)?;
    if let Err(problem) = check_new_password(&form.password, Some(&form.password_again)) {
        let page = SetupPage { csrf, token, email: form.email, error: Some(problem), valid: true };
        return render(&page);
    }
    let store = state.store.clone();
    let hash = token_hash(&token);
    let (email, password) = (form.email.clone(), form.password.clone());
    let Some(slot) = state.dashboard.logins.hash_slot().await else { return Ok(busy()) };
    let result = blocking(move || {
        let _slot = slot;
        let password_hash = hash_password(&password).map_err(PageError::Internal)?;
        match store.use_setup_token(&hash, &email, &password_hash) {
            Ok(user) => Ok(Ok(start_session(&store, user.id)?)),
            Err(store::StoreError::Invalid(why)) => Ok(Err(why)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match result {
        Ok(session) => Ok(logged_in(&state, "/dashboard", &session)),
        Err(why) => render(&SetupPage { csrf, token, email: form.email, error: Some(why), valid: true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_must_come_from_this_host_and_the_public_scheme() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("sentry.example.com"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(check_origin(&headers(None), true).is_ok(), "no Origin: the CSRF token decides");
        assert!(check_origin(&headers(Some("https://sentry.example.com")), true).is_ok());
        assert!(check_origin(&headers(Some("http://sentry.example.com")), false).is_ok());
        assert!(check_origin(&headers(Some("http://sentry.example.com")), true).is_err(), "another scheme");
        assert!(check_origin(&headers(Some("https://sentry.example.com")), false).is_err());
        assert!(check_origin(&headers(Some("https://evil.example.com")), true).is_err(), "another host");
        assert!(check_origin(&headers(Some("sentry.example.com")), true).is_err(), "no scheme at all");
        assert!(check_origin(&headers(Some("null")), true).is_err());
    }

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
        for good in ["/p/shop/?sort=freq", "/", "/dashboard", "/p/a%20b/", "/p/shop/?q=a%2Fb"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "evil.example",
            "",
            "/\\evil",
            "/\\/evil",
            "/x\\y",
            "/login?next=/x",
            "/\t/evil.example/",
            "/%09/evil.example/",
            "/\n/evil.example/",
            "/x\r\nSet-Cookie: a=b",
            "/x%0d%0aSet-Cookie:%20a=b",
            "/%2F/evil.example/",
            "/%5Cevil.example/",
            "/x\u{7f}",
            "/x\u{85}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn percent_decode_decodes_once() {
        assert_eq!(percent_decode("/a%20b%2"), "/a b%2");
        assert_eq!(percent_decode("%2541"), "%41");
        assert_eq!(percent_decode("%zz%C3%A9"), "%zz\u{e9}");
    }

    #[test]
    fn limiter_counts_attempts_before_they_are_checked() {
        let l = LoginLimiter::default();
        let ip1: IpAddr = "192.0.2.1".parse().unwrap();
        let ip2: IpAddr = "192.0.2.2".parse().unwrap();
        // Reservations held at once (as concurrent logins would) count against the limit.
        let held: Vec<_> = (0..LOGIN_ATTEMPTS).map(|_| l.reserve(&login_keys("A@x", Some(ip1))).unwrap()).collect();
        assert!(l.reserve(&login_keys("a@x ", Some(ip1))).is_err());
        // Another address may still try the same email, and this address another email.
        assert!(l.reserve(&login_keys("a@x", Some(ip2))).is_ok());
        assert!(l.reserve(&login_keys("b@x", Some(ip1))).is_ok());
        for r in held {
            r.keep();
        }
        assert!(l.reserve(&login_keys("a@x", Some(ip1))).is_err(), "failures stay counted");
        let ok = l.reserve(&login_keys("a@x", Some(ip2))).unwrap();
        l.succeed(ok);
    }

    #[test]
    fn a_given_back_reservation_is_not_counted_and_success_forgets() {
        let l = LoginLimiter::default();
        for _ in 0..LOGIN_ATTEMPTS * 3 {
            drop(l.reserve(&login_keys("a@x", None)).unwrap());
        }
        for _ in 0..LOGIN_ATTEMPTS - 1 {
            l.reserve(&login_keys("a@x", None)).unwrap().keep();
        }
        let r = l.reserve(&login_keys("a@x", None)).unwrap();
        l.succeed(r);
        for _ in 0..LOGIN_ATTEMPTS {
            l.reserve(&login_keys("a@x", None)).unwrap().keep();
        }
        assert!(l.reserve(&login_keys("a@x", None)).is_err());
    }

    #[test]
    fn one_address_is_limited_across_emails() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..LOGIN_ATTEMPTS_PER_ADDRESS {
            l.reserve(&login_keys(&format!("u{i}@x"), Some(ip))).unwrap().keep();
        }
        assert!(l.reserve(&login_keys("new@x", Some(ip))).is_err());
        assert!(l.reserve(&login_keys("new@x", Some("192.0.2.10".parse().unwrap()))).is_ok());
    }
}
