//! SQL normalisation cases: query in, normalised query out, and each output a fixpoint.

use super::*;

fn check(input: &str, expected: &str) {
    let got = normalize(input);
    assert_eq!(got, expected, "normalize({input:?})");
    assert_eq!(normalize(&got), got, "not idempotent for {input:?}");
}

fn check_mysql(input: &str, expected: &str) {
    let got = normalize_for_engine(Some("pymysql"), input);
    assert_eq!(got, expected, "normalize_for_engine(mysql, {input:?})");
    assert_eq!(
        normalize_for_engine(Some("mysql"), &got),
        got,
        "not idempotent: {input:?}"
    );
}

#[test]
fn keyword_tables_are_sorted_and_upper_case() {
    assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    for k in KEYWORDS
        .iter()
        .chain(FUNCTION_KEYWORDS)
        .chain(LIST_AFTER_NAME)
    {
        assert_eq!(*k, k.to_ascii_uppercase());
        assert!(keyword(k).is_some(), "{k} is not in KEYWORDS");
    }
}

#[test]
fn django_queries() {
    check(
        r#"SELECT "shop_order"."id", "shop_order"."total" FROM "shop_order" WHERE "shop_order"."customer_id" = %s LIMIT 21"#,
        "SELECT shop_order.id, shop_order.total FROM shop_order WHERE shop_order.customer_id = ? LIMIT ?",
    );
    check(
        r#"INSERT INTO "shop_order" ("customer_id", "total") VALUES (%s, %s) RETURNING "shop_order"."id""#,
        "INSERT INTO shop_order (customer_id, total) VALUES (?) RETURNING shop_order.id",
    );
    check(
        r#"UPDATE "t" SET "a" = %(a)s, "b" = %(b_2)s WHERE "t"."id" IN (%s, %s, %s)"#,
        "UPDATE t SET a = ?, b = ? WHERE t.id IN (?)",
    );
    check(r#"SAVEPOINT "s140234_x1""#, "SAVEPOINT ?");
    check(r#"RELEASE SAVEPOINT "s140234_x12""#, "RELEASE SAVEPOINT ?");
}

#[test]
fn literals() {
    check(
        "select * from t where id in (1,2,3) and name = 'bob'",
        "SELECT * FROM t WHERE id IN (?) AND name = ?",
    );
    check("SELECT pg_sleep(0.05)", "SELECT pg_sleep(?)");
    check(
        "SELECT 'it''s', E'a\\'b', N'x', X'ff', B'01', U&'d\\0061'",
        "SELECT ?, ?, ?, ?, ?, ?",
    );
    check(
        "SELECT $$a 'b' c$$, $fn$ body $ fn $fn$ FROM t",
        "SELECT ?, ? FROM t",
    );
    check(
        "SELECT 0x1F, 1e10, 2.5E-3, .5, 7. FROM t",
        "SELECT ?, ?, ?, ?, ? FROM t",
    );
    check(
        "SELECT * FROM t WHERE a = -1 AND b=-2.5 AND c > +3",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c > ?",
    );
    check(
        "SELECT a - 1, a-1, a -1, (-1), f(-1, - 2)",
        "SELECT a - ?, a - ?, a - ?, (?), f(?, - ?)",
    );
    check(
        "SELECT * FROM t WHERE active = TRUE OR deleted = false",
        "SELECT * FROM t WHERE active = ? OR deleted = ?",
    );
    check(
        "SELECT * FROM t WHERE deleted_at IS NULL",
        "SELECT * FROM t WHERE deleted_at IS NULL",
    );
}

#[test]
fn placeholders() {
    check(
        "SELECT * FROM t WHERE a = ? AND b = ?1 AND c = $1 AND d = $12",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ?",
    );
    check(
        "SELECT * FROM t WHERE a = :name AND b = :1 AND c = %s AND d = %(d)s",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ?",
    );
    check(
        "SELECT a::int, $1::text, '1'::date FROM t",
        "SELECT a::int, ?::text, ?::date FROM t",
    );
    check(
        "SELECT * FROM t WHERE a LIKE %s ESCAPE '\\'",
        "SELECT * FROM t WHERE a LIKE ? ESCAPE ?",
    );
    check("SELECT a %sales FROM t", "SELECT a % sales FROM t");
}

#[test]
fn lists() {
    check(
        "SELECT * FROM t WHERE id IN ($1, $2, $3)",
        "SELECT * FROM t WHERE id IN (?)",
    );
    check(
        "SELECT * FROM t WHERE id NOT IN (1)",
        "SELECT * FROM t WHERE id NOT IN (?)",
    );
    check(
        "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
        "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
    );
    check(
        "SELECT * FROM t WHERE id IN %s",
        "SELECT * FROM t WHERE id IN ?",
    );
    check(
        "INSERT INTO t (a, b) VALUES (1, 2), (3, 4), (5, 6)",
        "INSERT INTO t (a, b) VALUES (?)",
    );
    check(
        "INSERT INTO t VALUES (1, now()), (2, now())",
        "INSERT INTO t VALUES (?, NOW())",
    );
    check(
        "INSERT INTO t VALUES (1, now()), (2, 3)",
        "INSERT INTO t VALUES (?, NOW()), (?)",
    );
    check("INSERT INTO t VALUES %s", "INSERT INTO t VALUES ?");
    check(
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v (n, s)",
        "SELECT * FROM (VALUES (?)) AS v(n, s)",
    );
}

#[test]
fn comments_whitespace_and_case() {
    check(
        "/* controller:index */ select\n\t a,\n  b   FROM t -- trailing\n where x=1;",
        "SELECT a, b FROM t WHERE x = ?",
    );
    check(
        "select count(*) from t group by a order by b desc",
        "SELECT COUNT(*) FROM t GROUP BY a ORDER BY b DESC",
    );
    check("SELECT a FROM t;;", "SELECT a FROM t");
    check("BEGIN; SELECT 1; COMMIT;", "BEGIN; SELECT ?; COMMIT");
    check("SELECT `a` FROM `my table`", "SELECT a FROM `my table`");
    check(
        r#"SELECT "order", "t"."order", "Weird ""x""" FROM "user""#,
        r#"SELECT "order", t.order, "Weird ""x""" FROM user"#,
    );
    check(
        "SELECT a FROM t WHERE b = ANY(ARRAY[1, 2]) AND c[1] = 2",
        "SELECT a FROM t WHERE b = ANY(ARRAY[?, ?]) AND c[?] = ?",
    );
    check("", "");
    check("  -- only a comment", "");
}

#[test]
fn truncated_queries() {
    check(
        "SELECT * FROM t WHERE name = 'unterminated",
        "SELECT * FROM t WHERE name = ?",
    );
    check("SELECT * FROM t /* unterminated", "SELECT * FROM t");
    check(
        "SELECT * FROM t WHERE id IN (1, 2, 3",
        "SELECT * FROM t WHERE id IN (?)",
    );
    check(
        "INSERT INTO t VALUES (1, 2), (3, 4), (5,",
        "INSERT INTO t VALUES (?)",
    );
    check(
        "INSERT INTO t VALUES (1, 2), (3, 4),",
        "INSERT INTO t VALUES (?)",
    );
    check(
        "INSERT INTO t VALUES (1, f(2",
        "INSERT INTO t VALUES (?, f(?",
    );
    check(r#"SELECT "unterminated"#, r#"SELECT unterminated"#);
    check("SELECT $$never closed", "SELECT ?");
    check("SELECT $tag", "SELECT $ tag");
}

#[test]
fn regressions() {
    check("IN (;--", "IN (?)");
    check("*/./**/0x1f$$", "*/. 0x1f$$");
}

/// Inputs that would take quadratic time in a naive tokenizer finish at once.
#[test]
fn long_inputs_are_linear() {
    for unit in [
        "(", "IN (", "VALUES (", "$a$", "'", "%(", "?,", "/*", "1.", "\"\"", "x IN (1,",
    ] {
        let long = unit.repeat(20_000);
        let once = normalize(&long);
        assert_eq!(normalize(&once), once);
    }
}

#[test]
fn mysql_dialect() {
    check_mysql(
        r#"SELECT `a` FROM `t` WHERE b = "x" AND c = 'it\'s' # comment"#,
        "SELECT a FROM t WHERE b = ? AND c = ?",
    );
    check_mysql(
        "INSERT INTO t (a) VALUES (1),(2) ON DUPLICATE KEY UPDATE a = 3",
        "INSERT INTO t (a) VALUES (?) ON DUPLICATE KEY UPDATE a = ?",
    );
}

#[test]
fn engine_names() {
    for (input, expected) in [
        ("psycopg2", Some("postgresql")),
        ("PostgreSQL", Some("postgresql")),
        ("postgresql_psycopg2", Some("postgresql")),
        ("postgres", Some("postgresql")),
        ("django.db.backends.postgresql", Some("postgresql")),
        ("MySQLdb", Some("mysql")),
        ("pymysql", Some("mysql")),
        ("mysql.connector", Some("mysql")),
        ("django.db.backends.mysql", Some("mysql")),
        ("sqlite3", Some("sqlite")),
        ("  CockroachDB ", Some("cockroachdb")),
        ("   ", None),
    ] {
        assert_eq!(canonical_engine(input).as_deref(), expected, "{input:?}");
    }
}
