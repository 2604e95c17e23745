//! The page of a one-time invitation link (`/invite/{token}`): whoever has the link sets a
//! password for the invited email (or, when that email has an account, gives its password),
//! joins the organisation with the invitation's role and team, and is logged in. A link works
//! once and until it expires; only its hash is stored.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Form;
use serde::Deserialize;

use super::auth::{
    busy, check_new_password, check_pre_session_form, hash_password, login_csrf, login_keys, logged_in, start_session, token_hash,
    too_many, verify_password, with_login_csrf, ClientIp,
};
use super::{blocking, render, PageError, PageResult};
use crate::AppState;

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    csrf: String,
    token: String,
    /// The invitation, when it can still be used: (organisation, email, role).
    invitation: Option<(String, String, String)>,
    /// The invited email has an account already: its password, not a new one.
    existing: bool,
    error: Option<String>,
}

fn page_of(state: &AppState, token: String, csrf: String, error: Option<String>) -> impl FnOnce() -> PageResult<InvitePage> + Send + 'static {
    let store = state.store.clone();
    move || {
        let found = store.invitation(&token_hash(&token))?;
        let existing = match &found {
            Some(i) => store.user_for_login(&i.email)?.is_some(),
            None => false,
        };
        let invitation = found.map(|i| (i.org.name, i.email, i.role.to_string()));
        Ok(InvitePage { csrf, token, invitation, existing, error })
    }
}

/// `GET /invite/{token}`
pub async fn page(State(state): State<AppState>, headers: HeaderMap, Path(token): Path<String>) -> PageResult {
    let (csrf, fresh) = login_csrf(&headers);
    let page = blocking(page_of(&state, token, csrf.clone(), None)).await?;
    with_login_csrf(render(&page), &csrf, fresh, state.dashboard.secure_cookies)
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `POST /invite/{token}`: joins and logs in, or shows the page again with what was wrong.
pub async fn accept(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> PageResult {
    let csrf = check_pre_session_form(&state, &headers, &form.csrf)?;
    // Guessing the password of an invited account through its link counts like failed logins.
    let reservation = match state.dashboard.logins.reserve(&login_keys(&format!("invite {token}"), ip)) {
        Ok(r) => r,
        Err(wait) => return Ok(too_many(format!("too many attempts; wait {} minute(s) and try again", wait.div_ceil(60)), wait)),
    };
    let Some(slot) = state.dashboard.logins.hash_slot().await else { return Ok(busy()) };
    let store = state.store.clone();
    let hash = token_hash(&token);
    let result = blocking(move || {
        let _slot = slot;
        let Some(invitation) = store.invitation(&hash)? else {
            return Ok(Err("This invitation has been used or has expired; ask for a new one.".to_string()));
        };
        let user = match store.user_for_login(&invitation.email)? {
            Some((user, stored)) => {
                if !verify_password(&form.password, &stored) {
                    return Ok(Err(format!("That is not the password of {}.", invitation.email)));
                }
                user
            }
            None => {
                if let Err(problem) = check_new_password(&form.password, Some(&form.password_again)) {
                    return Ok(Err(problem));
                }
                let password_hash = hash_password(&form.password).map_err(PageError::Internal)?;
                store.create_user(&invitation.email, &password_hash, false)?
            }
        };
        match store.accept_invitation(&hash, user.id) {
            Ok(org) => {
                store.record_audit(org.id, &user.email, "member.join", &format!("{} as {}", user.email, invitation.role))?;
                Ok(Ok(start_session(&store, user.id)?))
            }
            Err(store::StoreError::Invalid(why) | store::StoreError::Conflict(why)) => Ok(Err(why)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match result {
        Ok(session) => Ok(logged_in(&state, "/dashboard", &session)),
        Err(why) => {
            reservation.keep();
            let page = blocking(page_of(&state, token, csrf, Some(why))).await?;
            let mut resp = render(&page)?;
            *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(resp.into_response())
        }
    }
}
