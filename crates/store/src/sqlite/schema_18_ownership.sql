-- A project's ownership rules, as written (one rule a line; `store::owners` reads them).
CREATE TABLE ownership_rules (
    project_id INTEGER PRIMARY KEY REFERENCES projects(id),
    rules TEXT NOT NULL,
    updated_at REAL NOT NULL
);
