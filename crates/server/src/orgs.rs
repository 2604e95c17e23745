//! `sentry org`, `sentry team`, `sentry member` and `sentry token`: organisations, their teams
//! and members, and API tokens, from the command line. Every change is recorded in the
//! organisation's audit log as made by the command line.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use store::{NewToken, Organization, Role, Store, TeamId, TokenId, User};
use web::access::check_scopes;
use web::dashboard::auth::{random_token, token_hash};

use crate::cli::{MemberCommand, OrgCommand, TeamCommand, TokenCommand};
use crate::config::Config;
use crate::open_store;

/// How the audit log names a change made here.
pub const CLI_ACTOR: &str = "command line";

/// The organisation with this slug, or the first one without.
pub fn org_by_slug(store: &Arc<dyn Store>, slug: Option<&str>) -> Result<Organization> {
    match slug {
        Some(s) => store.organization_by_slug(s)?.with_context(|| format!("there is no organisation {s}; see `sentry org list`")),
        None => store.organizations()?.into_iter().next().context("there is no organisation; create one with `sentry org create`"),
    }
}

/// The team of `org` with this slug, or its first team without.
pub fn team_by_slug(store: &Arc<dyn Store>, org: &Organization, slug: Option<&str>) -> Result<Option<TeamId>> {
    let teams = store.teams(org.id)?;
    match slug {
        Some(s) => match teams.iter().find(|t| t.slug == s) {
            Some(t) => Ok(Some(t.id)),
            None => bail!("the organisation {} has no team {s}; its teams: {}", org.slug, teams.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>().join(", ")),
        },
        None => Ok(teams.first().map(|t| t.id)),
    }
}

pub fn role(name: &str) -> Result<Role> {
    Role::parse(name).with_context(|| format!("\"{name}\" is not a role: use owner, manager, admin or member"))
}

fn user_by_email(store: &Arc<dyn Store>, email: &str) -> Result<User> {
    Ok(store.user_for_login(email)?.with_context(|| format!("there is no user {email}; see `sentry user list`"))?.0)
}

pub fn org(config: &Config, cmd: OrgCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        OrgCommand::Create { name, owner } => {
            let owner = user_by_email(&store, &owner)?;
            let org = store.create_organization(&name, owner.id)?;
            store.record_audit(org.id, CLI_ACTOR, "org.create", &format!("{} owned by {}", org.slug, owner.email))?;
            println!("Created the organisation {} (owner {}), with the team {}.", org.slug, owner.email, org.slug);
        }
        OrgCommand::Sso { org, issuer, client_id, client_secret, required, domains, role: r, off } => {
            let org = org_by_slug(&store, Some(&org))?;
            if off {
                store.set_sso(org.id, None)?;
                store.record_audit(org.id, CLI_ACTOR, "sso.off", &org.slug)?;
                println!("Single sign-on is off for {}.", org.slug);
                return Ok(());
            }
            let sso = store::SsoConfig {
                issuer: issuer.unwrap_or_default(),
                client_id: client_id.unwrap_or_default(),
                client_secret: client_secret.unwrap_or_default(),
                required,
                allowed_domains: domains,
                default_role: role(&r)?,
            };
            store.set_sso(org.id, Some(&sso))?;
            store.record_audit(org.id, CLI_ACTOR, "sso.set", &format!("{} ({})", sso.issuer, if required { "required" } else { "optional" }))?;
            println!(
                "Single sign-on for {} through {}: members sign in at {}/sso/{}; register {}/sso/callback as the redirect URI.",
                org.slug,
                sso.issuer,
                config.public_url(),
                org.slug,
                config.public_url()
            );
        }
        OrgCommand::List => {
            for o in store.organizations()? {
                println!("{:<24} {:>3} member(s)  {}", o.slug, store.members(o.id)?.len(), o.name);
            }
        }
    }
    Ok(())
}

pub fn team(config: &Config, cmd: TeamCommand) -> Result<()> {
    let store = open_store(config)?;
    let TeamCommand::Create { org, name } = cmd;
    let org = org_by_slug(&store, Some(&org))?;
    let team = store.create_team(org.id, &name)?;
    store.record_audit(org.id, CLI_ACTOR, "team.create", &team.slug)?;
    println!("Created the team {} in {}.", team.slug, org.slug);
    Ok(())
}

pub fn member(config: &Config, cmd: MemberCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        MemberCommand::Add { org, email, role: r, team } => {
            let org = org_by_slug(&store, Some(&org))?;
            let user = user_by_email(&store, &email)?;
            let role = role(&r)?;
            let team = match team {
                Some(t) => team_by_slug(&store, &org, Some(&t))?,
                None => None,
            };
            store.add_member(org.id, user.id, role, team)?;
            store.record_audit(org.id, CLI_ACTOR, "member.add", &format!("{} as {role}", user.email))?;
            println!("{} is now {role} of {}.", user.email, org.slug);
        }
        MemberCommand::Role { org, email, role: r } => {
            let org = org_by_slug(&store, Some(&org))?;
            let user = user_by_email(&store, &email)?;
            let role = role(&r)?;
            store.set_role(org.id, user.id, role)?;
            store.record_audit(org.id, CLI_ACTOR, "member.role", &format!("{}: to {role}", user.email))?;
            println!("{} is now {role} of {}.", user.email, org.slug);
        }
        MemberCommand::Remove { org, email } => {
            let org = org_by_slug(&store, Some(&org))?;
            let user = user_by_email(&store, &email)?;
            store.remove_member(org.id, user.id)?;
            store.record_audit(org.id, CLI_ACTOR, "member.remove", &user.email)?;
            println!("Removed {} from {}; their personal tokens there are revoked.", user.email, org.slug);
        }
        MemberCommand::List { org } => {
            let org = org_by_slug(&store, Some(&org))?;
            for m in store.members(org.id)? {
                println!("{:<40} {}", m.user.email, m.role);
            }
        }
    }
    Ok(())
}

pub fn token(config: &Config, cmd: TokenCommand) -> Result<()> {
    let store = open_store(config)?;
    match cmd {
        TokenCommand::Create { org, scopes, user, name } => {
            let org = org_by_slug(&store, Some(&org))?;
            let scopes: Vec<String> = scopes.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
            check_scopes(&scopes).map_err(anyhow::Error::msg)?;
            let user = match user {
                Some(email) => {
                    let u = user_by_email(&store, &email)?;
                    if !store.memberships(u.id)?.iter().any(|m| m.org.id == org.id) {
                        bail!("{email} is not a member of {}; a personal token acts as its member", org.slug);
                    }
                    Some(u)
                }
                None => None,
            };
            let secret = random_token();
            let made = store.create_token(&NewToken {
                token_hash: &token_hash(&secret),
                name: &name,
                org_id: org.id,
                user_id: user.as_ref().map(|u| u.id),
                scopes: &scopes,
            })?;
            store.record_audit(org.id, CLI_ACTOR, "token.create", &format!("{} ({})", made.name, made.scopes.join(" ")))?;
            println!("{secret}");
            eprintln!(
                "Token {} of {} ({}), with scopes {}. It is shown only now; send it as Authorization: Bearer <token>.",
                made.id,
                org.slug,
                user.map_or_else(|| "the organisation's own".to_string(), |u| format!("personal, for {}", u.email)),
                made.scopes.join(" ")
            );
        }
        TokenCommand::List { org } => {
            let org = org_by_slug(&store, Some(&org))?;
            for t in store.tokens(org.id)? {
                let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                let used = t.last_used_at.map_or_else(|| "never used".to_string(), |at| format!("last used {}", crate::admin::rfc3339(at)));
                println!("{:>4}  {:<8} {:<24} {:<34} {}", t.id, state, t.name, used, t.scopes.join(" "));
            }
        }
        TokenCommand::Revoke { org, id } => {
            let org = org_by_slug(&store, Some(&org))?;
            if !store.revoke_token(org.id, TokenId(id))? {
                bail!("the organisation {} has no token {id}; see `sentry token list --org {}`", org.slug, org.slug);
            }
            store.record_audit(org.id, CLI_ACTOR, "token.revoke", &format!("token {id}"))?;
            println!("Revoked token {id}; it is refused from its next request.");
        }
    }
    Ok(())
}
