//! Ownership rules at work: a new issue is assigned to the first owner of the last rule
//! (`store::owners`) that its latest event matches, unless someone assigned it already.

use store::owners::{Owner, Rules};
use store::{Assignee, GroupId, ProjectId, Store};

/// Assigns a new issue by its project's ownership rules. What goes wrong is logged: an issue
/// left unassigned never stops the alert engine.
pub(crate) fn assign_new_issue(store: &dyn Store, group: GroupId, project: ProjectId) {
    if let Err(e) = try_assign(store, group, project) {
        tracing::warn!(group = group.0, error = %e, "ownership rules: the issue stays unassigned");
    }
}

fn try_assign(store: &dyn Store, group: GroupId, project: ProjectId) -> store::Result<()> {
    let Some(text) = store.ownership_rules(project)? else { return Ok(()) };
    // Saved rules were checked; a line that no longer reads is skipped with the whole text.
    let Ok(rules) = Rules::parse(&text) else { return Ok(()) };
    if rules.rules.is_empty() {
        return Ok(());
    }
    let Some(event) = store.group_events(group, None, 1)?.into_iter().next() else { return Ok(()) };
    let json: serde_json::Value = serde_json::from_slice(&event.payload).unwrap_or_default();
    let Some(rule) = rules.owner_of(&json, &event.tags) else { return Ok(()) };
    let Some(org) = store.project(project)?.map(|p| p.org_id) else { return Ok(()) };
    // The owner as the organisation has it now: a team renamed or a member gone assigns nobody.
    let to = match &rule.owners[0] {
        Owner::Team(slug) => store.teams(org)?.into_iter().find(|t| t.slug.eq_ignore_ascii_case(slug)).map(|t| Assignee::Team(t.id)),
        Owner::Email(email) => store.members(org)?.into_iter().find(|m| m.user.email.eq_ignore_ascii_case(email)).map(|m| Assignee::User(m.user.id)),
    };
    match to {
        Some(to) => {
            store.assign_by_rule(group, to, &rule.text)?;
        }
        None => tracing::info!(group = group.0, owner = %rule.owners[0], "ownership rule names an owner who is not in the organisation"),
    }
    Ok(())
}
