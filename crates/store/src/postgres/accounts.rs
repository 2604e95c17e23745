//! Accounts: users (with their argon2 password hashes, computed by the caller), browser
//! sessions with their CSRF tokens, and the one-time setup links printed while no user exists.
//! Tokens arrive here already hashed: the store never sees a cookie's secret.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use crate::{Result, Role, Session, StoreError, User, UserId, checks, now};

const USER_COLUMNS: &str = "u.id, u.email, u.is_admin, u.created_at, u.last_login";

pub(super) fn user_from(r: &Row) -> User {
    User { id: UserId(r.get(0)), email: r.get(1), is_admin: r.get(2), created_at: r.get(3), last_login: r.get(4) }
}

/// The first user (from the setup link) owns the first organisation and is in its first team.
async fn join_first_organization(tx: &impl GenericClient, user: UserId) -> Result<()> {
    tx.execute(
        "INSERT INTO members (org_id, user_id, role, created_at) SELECT id, $1, $2, $3 FROM organizations ORDER BY id LIMIT 1",
        &[&user.0, &Role::Owner.as_str(), &now()],
    )
    .await?;
    tx.execute(
        "INSERT INTO team_members (team_id, user_id)
         SELECT t.id, $1 FROM teams t WHERE t.org_id = (SELECT MIN(id) FROM organizations) ORDER BY t.id LIMIT 1",
        &[&user.0],
    )
    .await?;
    Ok(())
}

/// Whether a setup link is usable: not used, not expired, and still no user exists.
const SETUP_USABLE: &str = "SELECT EXISTS(SELECT 1 FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2)
    AND NOT EXISTS(SELECT 1 FROM users)";

impl crate::Accounts for PgStore {
    fn create_user(&self, email: &str, password_hash: &str, is_admin: bool) -> Result<User> {
        let email = checks::email(email)?;
        self.with(async |c| {
            let t = now();
            let row = c
                .query_one(
                    "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&email, &password_hash, &is_admin, &t],
                )
                .await
                .map_err(|e| super::taken(e, format!("a user with the email {email} already exists")))?;
            Ok(User { id: UserId(row.get(0)), email: email.to_string(), is_admin, created_at: t, last_login: None })
        })
    }

    fn set_password(&self, user_id: UserId, password_hash: &str) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            if tx.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[&user_id.0, &password_hash]).await? == 0 {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            }
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id.0]).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn delete_user(&self, user_id: UserId) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let orgs = tx.query("SELECT org_id FROM members WHERE user_id = $1", &[&user_id.0]).await?;
            for org in orgs {
                super::orgs::keep_an_owner(&tx, crate::OrgId(org.get(0)), user_id).await?;
            }
            tx.execute("UPDATE groups SET assigned_user = NULL WHERE assigned_user = $1", &[&user_id.0]).await?;
            if tx.execute("DELETE FROM users WHERE id = $1", &[&user_id.0]).await? == 0 {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn user_count(&self) -> Result<u64> {
        self.with(async |c| Ok(c.query_one("SELECT COUNT(*) FROM users", &[]).await?.get::<_, i64>(0).max(0) as u64))
    }

    fn users(&self) -> Result<Vec<User>> {
        self.with(async |c| Ok(c.query(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"), &[]).await?.iter().map(user_from).collect()))
    }

    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.with(async |c| Ok(c.query_opt(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"), &[&id.0]).await?.as_ref().map(user_from)))
    }

    fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        self.with(async |c| {
            let row = c
                .query_opt(&format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE lower(u.email) = lower($1)"), &[&email.trim()])
                .await?;
            Ok(row.map(|r| (user_from(&r), r.get(5))))
        })
    }

    fn create_session(&self, user_id: UserId, token_hash: &str, csrf_token: &str, ttl_secs: f64) -> Result<()> {
        self.with(async |c| {
            let t = now();
            c.execute("DELETE FROM sessions WHERE expires_at < $1", &[&t]).await?;
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, password_stamp)
                 VALUES ($1, $2, $3, $4, $5, (SELECT right(password_hash, 16) FROM users WHERE id = $2))",
                &[&token_hash, &user_id.0, &csrf_token, &t, &(t + ttl_secs)],
            )
            .await?;
            c.execute("UPDATE users SET last_login = $2 WHERE id = $1", &[&user_id.0, &t]).await?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        self.with(async |c| {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                         WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.password_stamp = right(u.password_hash, 16)"
                    ),
                    &[&token_hash, &now()],
                )
                .await?;
            Ok(row.map(|r| Session { user: user_from(&r), csrf_token: r.get(5), expires_at: r.get(6) }))
        })
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.with(async |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]).await?;
            Ok(())
        })
    }

    /// Replaces any unused setup link by a new one (hashed), valid for `ttl_secs`.
    fn create_setup_token(&self, token_hash: &str, ttl_secs: f64) -> Result<()> {
        self.with(async |c| {
            let tx = c.transaction().await?;
            let t = now();
            tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", &[]).await?;
            tx.execute(
                "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
                &[&token_hash, &t, &(t + ttl_secs)],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn setup_token_valid(&self, token_hash: &str) -> Result<bool> {
        self.with(async |c| Ok(c.query_one(SETUP_USABLE, &[&token_hash, &now()]).await?.get(0)))
    }

    fn use_setup_token(&self, token_hash: &str, email: &str, password_hash: &str) -> Result<User> {
        let email = checks::email(email)?;
        self.with(async |c| {
            let tx = c.transaction().await?;
            // Two visitors racing with the same link: the second waits here, then finds it used.
            tx.execute("LOCK TABLE setup_tokens IN EXCLUSIVE MODE", &[]).await?;
            let t = now();
            let ok: bool = tx.query_one(SETUP_USABLE, &[&token_hash, &t]).await?.get(0);
            if !ok {
                return Err(StoreError::Invalid("this setup link has been used or has expired".into()));
            }
            tx.execute("UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1", &[&token_hash, &t]).await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES ($1, $2, true, $3) RETURNING id",
                    &[&email, &password_hash, &t],
                )
                .await?
                .get(0);
            join_first_organization(&tx, UserId(id)).await?;
            tx.commit().await?;
            Ok(User { id: UserId(id), email: email.to_string(), is_admin: true, created_at: t, last_login: None })
        })
    }
}
