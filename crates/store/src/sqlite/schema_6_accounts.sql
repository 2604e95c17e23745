-- Version 6: organisations, teams and roles; API tokens; invitations; the audit log.
--
-- An organisation owns teams and projects; a project belongs to one or more teams; a user is a
-- member of an organisation with a role (owner, manager, admin, member) and of some of its
-- teams. What was there before moves into one organisation, "default", with one team,
-- "default", that every existing project belongs to. Users who were administrators become
-- its owners; the others become members of the default team, so they still see every
-- existing project and can triage its issues, but no longer change projects or keys.

CREATE TABLE organizations (
    id         INTEGER PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    slug       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (org_id, slug)
);

-- Project slugs stay unique across organisations: the dashboard's URLs carry only the slug.
-- (SQLite can't add a column with REFERENCES and a default to a table with rows.)
ALTER TABLE projects ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX projects_org ON projects(org_id);

CREATE TABLE project_teams (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    team_id    INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, team_id)
) WITHOUT ROWID;
CREATE INDEX project_teams_team ON project_teams(team_id);

-- role: 'owner', 'manager', 'admin' or 'member'.
CREATE TABLE members (
    org_id     INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members(user_id);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX team_members_user ON team_members(user_id);

-- API tokens (`Authorization: Bearer …`). Only a SHA-256 of the token is kept. Every token
-- belongs to one organisation; a personal token also acts as its user (user_id), whose role
-- there bounds it. scopes: space-separated, Sentry's names.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    org_id       INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);
CREATE INDEX api_tokens_org ON api_tokens(org_id);

-- One-time invitation links (hashed like sessions): single use, expiring.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL,
    team_id    INTEGER REFERENCES teams(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL
) WITHOUT ROWID;

-- Who changed what in an organisation: members, roles, keys, tokens, projects.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX audit_log_org ON audit_log(org_id, id);

INSERT INTO organizations (id, slug, name, created_at) VALUES (1, 'default', 'Default', (julianday('now') - 2440587.5) * 86400.0);
INSERT INTO teams (id, org_id, slug, name, created_at) VALUES (1, 1, 'default', 'Default', (julianday('now') - 2440587.5) * 86400.0);
INSERT INTO project_teams (project_id, team_id) SELECT id, 1 FROM projects;
INSERT INTO members (org_id, user_id, role, created_at)
    SELECT 1, id, CASE WHEN is_admin THEN 'owner' ELSE 'member' END, created_at FROM users;
INSERT INTO team_members (team_id, user_id) SELECT 1, id FROM users;

-- A session is bound to the password it was opened with: the end of the user's password hash
-- at login, compared at every request, so any change of password ends it (sessions opened
-- before this version have none and end too: everyone logs in again once).
ALTER TABLE sessions ADD COLUMN password_stamp TEXT;

-- Single sign-on with OpenID Connect, per organisation. `required`: members sign in through it
-- (owners may still use their password). A first sign-in creates the member with
-- `default_role`, when the email's domain is one of `allowed_domains` (space-separated;
-- empty: nobody new).
CREATE TABLE org_sso (
    org_id          INTEGER PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    issuer          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    client_secret   TEXT NOT NULL,
    required        INTEGER NOT NULL DEFAULT 0,
    allowed_domains TEXT NOT NULL DEFAULT '',
    default_role    TEXT NOT NULL DEFAULT 'member'
);
