-- A project's ownership rules, as written (one rule a line; `store::owners` reads them).
CREATE TABLE ownership_rules (
    project_id bigint PRIMARY KEY REFERENCES projects(id),
    rules text NOT NULL,
    updated_at double precision NOT NULL
);
