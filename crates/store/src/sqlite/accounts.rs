//! Accounts: users (with their argon2 password hashes, computed by the caller), browser
//! sessions with their CSRF tokens, and the one-time setup links printed while no user exists.
//! Tokens arrive here already hashed: the store never sees a cookie's secret.

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::now;
use crate::{Result, Session, StoreError, User, UserId};

const USER_COLUMNS: &str = "u.id, u.email, u.is_admin, u.created_at, u.last_login";

fn user_from(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        email: r.get(1)?,
        is_admin: r.get::<_, i64>(2)? != 0,
        created_at: r.get(3)?,
        last_login: r.get(4)?,
    })
}

/// The first user (from the setup link) owns the first organisation and is in its first team.
fn join_first_organization(tx: &rusqlite::Transaction<'_>, user: UserId) -> Result<()> {
    let role = crate::Role::Owner;
    tx.execute(
        "INSERT INTO members (org_id, user_id, role, created_at)
         SELECT id, ?1, ?2, ?3 FROM organizations ORDER BY id LIMIT 1",
        params![user.0, role.as_str(), now()],
    )?;
    tx.execute(
        "INSERT INTO team_members (team_id, user_id)
         SELECT t.id, ?1 FROM teams t WHERE t.org_id = (SELECT MIN(id) FROM organizations) ORDER BY t.id LIMIT 1",
        [user.0],
    )?;
    Ok(())
}

impl crate::Accounts for SqliteStore {
    /// Creates a user. The email must not be taken (case-insensitively).
    fn create_user(&self, email: &str, password_hash: &str, is_admin: bool) -> Result<User> {
        let email = crate::checks::email(email)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        tx.execute(
            "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![email, password_hash, is_admin as i64, t],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(format!("a user with the email {email} already exists"))
            }
            e => e.into(),
        })?;
        let id = UserId(tx.last_insert_rowid());
        tx.commit()?;
        Ok(User { id, email: email.to_string(), is_admin, created_at: t, last_login: None })
    }

    /// Sets a user's password hash (and logs out their other sessions).
    fn set_password(&self, user_id: UserId, password_hash: &str) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![user_id.0, password_hash])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id.0])?;
        tx.commit()?;
        Ok(())
    }

    fn delete_user(&self, user_id: UserId) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let orgs = {
            let mut st = tx.prepare("SELECT org_id FROM members WHERE user_id = ?1")?;
            st.query_map([user_id.0], |r| Ok(crate::OrgId(r.get(0)?)))?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for org in orgs {
            super::orgs::keep_an_owner(&tx, org, user_id)?;
        }
        tx.execute("UPDATE groups SET assigned_user = NULL WHERE assigned_user = ?1", [user_id.0])?;
        if tx.execute("DELETE FROM users WHERE id = ?1", [user_id.0])? == 0 {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        tx.commit()?;
        Ok(())
    }

    fn user_count(&self) -> Result<u64> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id"))?;
        let rows = st.query_map([], user_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn user(&self, id: UserId) -> Result<Option<User>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"))?;
        Ok(st.query_row([id.0], user_from).optional()?)
    }

    /// A user and their password hash, by email (case-insensitive), for logging in.
    fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = ?1"))?;
        Ok(st.query_row([email.trim()], |r| Ok((user_from(r)?, r.get::<_, String>(5)?))).optional()?)
    }

    /// Records a session for a user; `token_hash` is the SHA-256 of the cookie's token.
    fn create_session(&self, user_id: UserId, token_hash: &str, csrf_token: &str, ttl_secs: f64) -> Result<()> {
        let conn = self.conn()?;
        let t = now();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [t])?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, password_stamp)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT substr(password_hash, -16) FROM users WHERE id = ?2))",
            params![token_hash, user_id.0, csrf_token, t, t + ttl_secs],
        )?;
        conn.execute("UPDATE users SET last_login = ?2 WHERE id = ?1", params![user_id.0, t])?;
        Ok(())
    }

    /// The live (not expired) session with this token hash.
    fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let conn = self.conn()?;
        let mut st = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND s.password_stamp = substr(u.password_hash, -16)"
        ))?;
        Ok(st
            .query_row(params![token_hash, now()], |r| {
                Ok(Session { user: user_from(r)?, csrf_token: r.get(5)?, expires_at: r.get(6)? })
            })
            .optional()?)
    }

    fn delete_session(&self, token_hash: &str) -> Result<()> {
        let conn = self.conn()?;
        conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    /// Replaces any unused setup link by a new one (hashed), valid for `ttl_secs`.
    fn create_setup_token(&self, token_hash: &str, ttl_secs: f64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        tx.execute("DELETE FROM setup_tokens WHERE used_at IS NULL", [])?;
        tx.execute(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![token_hash, t, t + ttl_secs],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a setup link is still usable: not used, not expired, and still no user exists.
    fn setup_token_valid(&self, token_hash: &str) -> Result<bool> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM setup_tokens WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2)
                AND NOT EXISTS(SELECT 1 FROM users)",
            params![token_hash, now()],
            |r| r.get(0),
        )?)
    }

    /// Uses a setup link: creates the first (admin) user, in one transaction, so two visitors
    /// racing with the same link can't both succeed.
    fn use_setup_token(&self, token_hash: &str, email: &str, password_hash: &str) -> Result<User> {
        let email = crate::checks::email(email)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let ok: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM setup_tokens WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2)
                AND NOT EXISTS(SELECT 1 FROM users)",
            params![token_hash, t],
            |r| r.get(0),
        )?;
        if !ok {
            return Err(StoreError::Invalid("this setup link has been used or has expired".into()));
        }
        tx.execute("UPDATE setup_tokens SET used_at = ?2 WHERE token_hash = ?1", params![token_hash, t])?;
        tx.execute(
            "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES (?1, ?2, 1, ?3)",
            params![email, password_hash, t],
        )?;
        let id = tx.last_insert_rowid();
        join_first_organization(&tx, UserId(id))?;
        tx.commit()?;
        Ok(User { id: UserId(id), email: email.to_string(), is_admin: true, created_at: t, last_login: None })
    }
}
