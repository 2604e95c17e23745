//! `sentry user create EMAIL [--admin] [--password-stdin]`, `sentry user passwd EMAIL
//! [--password-stdin]`, `sentry user delete EMAIL [--yes]` and `sentry user list`: the people who log in to the web dashboard, and
//! the one-time setup link `sentry start` prints while there is nobody yet.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use web::dashboard::auth::{check_new_password, hash_password, new_setup_token};

use crate::cli::UserCommand;
use crate::config::Config;
use crate::open_store;

pub fn user(config: &Config, cmd: UserCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        UserCommand::Create { email, admin, org, role, team, password_stdin } => {
            let org = crate::orgs::org_by_slug(&store, org.as_deref())?;
            let role = match role {
                Some(r) => crate::orgs::role(&r)?,
                None if admin => store::Role::Owner,
                None => store::Role::Member,
            };
            let team = crate::orgs::team_by_slug(&store, &org, team.as_deref())?;
            let password = read_password(&email, password_stdin, "create", "nothing was created")?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let user = store.create_user(&email, &hash, admin)?;
            store.add_member(org.id, user.id, role, team)?;
            store.record_audit(org.id, crate::orgs::CLI_ACTOR, "member.add", &format!("{} as {role}", user.email))?;
            println!("Created the user {}, {role} of {}. Log in at {}/login", user.email, org.slug, config.public_url());
        }
        UserCommand::Passwd { email, password_stdin } => {
            let Some((user, _)) = store.user_for_login(&email)? else {
                bail!("there is no user {email}; see `sentry user list`");
            };
            let password = read_password(&user.email, password_stdin, "passwd", "the password was not changed")?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            store.set_password(user.id, &hash)?;
            println!(
                "Set a new password for {}; the old one no longer works, and the sessions logged in with it have ended.",
                user.email
            );
        }
        UserCommand::Delete { email, yes } => {
            let Some((user, _)) = store.user_for_login(&email)? else {
                bail!("there is no user {email}; see `sentry user list`");
            };
            let orgs = store.memberships(user.id)?;
            crate::admin::confirm(&format!("Deleting the user {}", user.email), &user.email, yes)?;
            store.delete_user(user.id)?;
            for m in orgs {
                store.record_audit(m.org.id, crate::orgs::CLI_ACTOR, "user.delete", &user.email)?;
            }
            println!("Deleted the user {}: they can't log in any more, and their sessions and tokens have ended.", user.email);
        }
        UserCommand::List => {
            let users = store.users()?;
            if users.is_empty() {
                println!("No users yet. Create one with: sentry user create EMAIL --admin");
            }
            for u in users {
                let roles: Vec<String> = store.memberships(u.id)?.iter().map(|m| format!("{} of {}", m.role, m.org.slug)).collect();
                println!("{:<40} {}", u.email, if roles.is_empty() { "in no organisation".to_string() } else { roles.join(", ") });
            }
        }
    }
    Ok(())
}

/// A new password for `email`: the first line of standard input with `stdin`, else asked
/// twice on the terminal. Checked to be long enough; `nothing_done` ends a refusal.
/// `command` is the `sentry user` subcommand, for the hint when there is no terminal.
fn read_password(email: &str, stdin: bool, command: &str, nothing_done: &str) -> Result<String> {
    let password = if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            bail!(
                "standard input is not a terminal, so the password can't be asked for; \
                 give it on standard input with --password-stdin, for example: \
                 printf '%s\\n' \"$PASSWORD\" | sentry user {command} {email} --password-stdin"
            );
        }
        let first = rpassword::prompt_password(format!("Password for {email}: ")).context("reading the password")?;
        let again = rpassword::prompt_password("The same password again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ; {nothing_done}");
        }
        first
    };
    if let Err(problem) = check_new_password(&password, None) {
        bail!("{problem}; {nothing_done}");
    }
    Ok(password)
}

/// While no user exists: a new one-time link that lets the first visitor become the
/// administrator (printed by `sentry start`).
pub fn setup_link(config: &Config, store: &std::sync::Arc<dyn store::Store>) -> Result<Option<String>> {
    if store.user_count()? > 0 {
        return Ok(None);
    }
    let token = new_setup_token(store)?;
    Ok(Some(format!("{}/setup/{token}", config.public_url())))
}
