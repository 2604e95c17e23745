//! SQL normalisation for grouping Query events: literals and placeholders become `?`, lists
//! collapse, comments and whitespace fold, keywords are upper-cased.
//!
//! A hand-written tokenizer, not a parser: it has to accept what clients really send, which
//! includes psycopg2's `%s` / `%(name)s` placeholders, vendor syntax and queries cut off in
//! the middle of a string or comment. Every input gives an output; the output is a fixpoint
//! (`normalize(normalize(x)) == normalize(x)`), because spacing is decided from the tokens
//! alone and every token the normaliser emits lexes back to itself.

/// Normalises `sql` with the generic dialect (standard quoting: `'string'`, `"identifier"`).
///
/// `SELECT "t"."id" FROM "t" WHERE "t"."a" = %s AND b IN (1, 2, 3) LIMIT 21` becomes
/// `SELECT t.id FROM t WHERE t.a = ? AND b IN (?) LIMIT ?`.
pub fn normalize(sql: &str) -> String {
    normalize_with(sql, Dialect::Generic)
}

/// Normalises `sql` in the dialect of `engine` (any spelling [`canonical_engine`] knows).
/// MySQL and MariaDB read `"…"` as a string, `\` as an escape inside strings and `#` as a
/// line comment; every other engine uses the generic dialect of [`normalize`].
pub fn normalize_for_engine(engine: Option<&str>, sql: &str) -> String {
    let dialect = match engine.and_then(canonical_engine).as_deref() {
        Some("mysql" | "mariadb") => Dialect::MySql,
        _ => Dialect::Generic,
    };
    normalize_with(sql, dialect)
}

/// The canonical name of a database engine, as clients spell it in `query.engine`,
/// `db.system` or a Django backend path. Lower-cased and trimmed; known aliases map to one
/// name (`psycopg2`, `postgres`, `postgresql_psycopg2`, `django.db.backends.postgresql` →
/// `postgresql`; `mysqldb`, `pymysql` → `mysql`; `sqlite3` → `sqlite`); anything else is
/// kept as it is, lower-cased. `None` for a blank name.
pub fn canonical_engine(engine: &str) -> Option<String> {
    let e = engine.trim().to_lowercase();
    if e.is_empty() {
        return None;
    }
    let last = e.rsplit('.').next().unwrap_or(&e);
    let known = engine_alias(&e).or_else(|| engine_alias(last));
    Some(known.map_or(e.clone(), str::to_string))
}

fn engine_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "postgresql"
        | "postgres"
        | "postgresql_psycopg2"
        | "psycopg2"
        | "psycopg"
        | "psycopg2cffi"
        | "pg"
        | "pg8000"
        | "asyncpg"
        | "postgis" => "postgresql",
        "mysql" | "mysqldb" | "pymysql" | "mysqlclient" | "mysql.connector" | "mysql-connector"
        | "mysqlconnector" | "aiomysql" | "mysql2" => "mysql",
        "mariadb" => "mariadb",
        "sqlite" | "sqlite3" | "pysqlite" | "aiosqlite" => "sqlite",
        "mssql" | "sqlserver" | "sql_server" | "pymssql" => "mssql",
        "oracle" | "cx_oracle" | "oracledb" => "oracle",
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Generic,
    MySql,
}

fn normalize_with(sql: &str, dialect: Dialect) -> String {
    let mut tokens = Lexer::new(sql, dialect).run();
    // Before collapsing, so that `IN (;` is a cut-off list like `IN (`.
    while tokens.last() == Some(&Tok::Punct(';')) {
        tokens.pop();
    }
    render(&collapse(&tokens, 0))
}

/// One token of normalised SQL. Every token renders to text that lexes back to itself.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A keyword of [`KEYWORDS`], upper-cased.
    Keyword(&'static str),
    /// An identifier as written, or (when stripping its quotes would change how it lexes)
    /// with its quotes.
    Ident(String),
    /// A literal or a bind parameter.
    Placeholder,
    /// One of `( ) , . ; [ ]`.
    Punct(char),
    /// An operator, or any other character.
    Op(String),
}

/// Common SQL keywords, upper-case and sorted (a test checks). Words deliberately left out
/// because they are common column names: `key`, `first`, `last`, `next`, `start`, `name`,
/// `type`, `user`, `date`, `time`.
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "ABS", "ADD", "ALL", "ALTER", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "AVG",
    "BEGIN", "BETWEEN", "BY", "CASCADE", "CASE", "CAST", "CHECK", "COALESCE", "COLLATE",
    "COLUMN", "COMMIT", "CONCAT", "CONFLICT", "CONSTRAINT", "COUNT", "CREATE", "CROSS",
    "CURRENT_DATE", "CURRENT_TIMESTAMP", "DEFAULT", "DELETE", "DESC", "DISTINCT", "DO",
    "DROP", "DUPLICATE", "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "EXPLAIN", "EXTRACT",
    "FETCH", "FILTER", "FOR", "FOREIGN", "FROM", "FULL", "GREATEST", "GROUP", "HAVING",
    "IF", "IGNORE", "ILIKE", "IN", "INDEX", "INNER", "INSERT", "INTERSECT", "INTERVAL",
    "INTO", "IS", "ISNULL", "JOIN", "LATERAL", "LEAST", "LEFT", "LENGTH", "LIKE", "LIMIT",
    "LOCK", "LOCKED", "LOWER", "MAX", "MIN", "NATURAL", "NOT", "NOTHING", "NOTNULL", "NOW",
    "NOWAIT", "NULL", "NULLIF", "NULLS", "OF", "OFFSET", "ON", "ONLY", "OR", "ORDER",
    "OUTER", "OVER", "PARTITION", "PRAGMA", "PRIMARY", "RECURSIVE", "REFERENCES", "RELEASE",
    "REPLACE", "RETURNING", "RIGHT", "ROLLBACK", "ROUND", "ROWS", "SAVEPOINT", "SELECT",
    "SET", "SHARE", "SIMILAR", "SKIP", "SOME", "SUBSTRING", "SUM", "TABLE", "THEN", "TO",
    "TRANSACTION", "TRIM", "TRUNCATE", "UNION", "UNIQUE", "UPDATE", "UPPER", "USING",
    "VACUUM", "VALUES", "VIEW", "WHEN", "WHERE", "WINDOW", "WITH",
];

/// Keywords written like functions: no space before their `(` (`COUNT(*)`, `CAST(…)`).
#[rustfmt::skip]
const FUNCTION_KEYWORDS: &[&str] = &[
    "ABS", "ANY", "ARRAY", "AVG", "CAST", "COALESCE", "CONCAT", "COUNT", "EXTRACT",
    "GREATEST", "IF", "LEAST", "LENGTH", "LOWER", "MAX", "MIN", "NOW", "NULLIF", "REPLACE",
    "ROUND", "SOME", "SUBSTRING", "SUM", "TRIM", "UPPER",
];

/// After `<keyword> <identifier>`, a `(` opens a column list, not a call: `INTO t (a, b)`.
const LIST_AFTER_NAME: &[&str] = &["INTO", "REFERENCES", "TABLE", "WITH", "RECURSIVE"];

fn keyword(word: &str) -> Option<&'static str> {
    let upper = word.to_ascii_uppercase();
    KEYWORDS
        .binary_search(&upper.as_str())
        .ok()
        .map(|i| KEYWORDS[i])
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn is_op_char(c: char) -> bool {
    matches!(
        c,
        '=' | '<' | '>' | '!' | '+' | '-' | '*' | '/' | '%' | '|' | '&' | '^' | '~' | '@' | '#'
    )
}

/// An identifier that may appear without quotes: it lexes as one word, and as an identifier.
fn is_bare_identifier(s: &str, after_dot: bool) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !is_ident_start(first) || !chars.all(is_ident_continue) {
        return false;
    }
    after_dot || (keyword(s).is_none() && !is_boolean(s))
}

fn is_boolean(word: &str) -> bool {
    word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false")
}

/// Longest `$tag$` we accept as a dollar-quote delimiter; longer ones are not worth the cost
/// of searching for their end.
const MAX_DOLLAR_TAG: usize = 64;

/// How deep `VALUES` lists nested inside `VALUES` rows are collapsed.
const MAX_VALUES_DEPTH: usize = 8;

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    dialect: Dialect,
    out: Vec<Tok>,
}

impl Lexer {
    fn new(sql: &str, dialect: Dialect) -> Self {
        Lexer {
            chars: sql.chars().collect(),
            pos: 0,
            dialect,
            out: Vec::new(),
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn is_digit_at(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }

    /// Whether a `+`/`-` here is the sign of a literal rather than an operator.
    fn sign_allowed(&self) -> bool {
        match self.out.last() {
            None | Some(Tok::Op(_) | Tok::Keyword(_)) => true,
            Some(Tok::Punct(p)) => !matches!(p, ')' | ']' | '.'),
            Some(Tok::Ident(_) | Tok::Placeholder) => false,
        }
    }

    fn after_dot(&self) -> bool {
        self.out.last() == Some(&Tok::Punct('.'))
    }

    fn run(mut self) -> Vec<Tok> {
        while let Some(c) = self.at(self.pos) {
            let next = self.at(self.pos + 1);
            match c {
                _ if c.is_whitespace() => self.pos += 1,
                '-' if next == Some('-') => self.skip_line(),
                '#' if self.dialect == Dialect::MySql => self.skip_line(),
                '/' if next == Some('*') => self.skip_block_comment(),
                '\'' => {
                    self.pos += 1;
                    self.skip_string('\'', self.dialect == Dialect::MySql);
                    self.out.push(Tok::Placeholder);
                }
                '"' if self.dialect == Dialect::MySql => {
                    self.pos += 1;
                    self.skip_string('"', true);
                    self.out.push(Tok::Placeholder);
                }
                '"' | '`' => self.quoted_identifier(c),
                '$' => self.dollar(),
                '?' => {
                    self.pos += 1;
                    while self.is_digit_at(self.pos) {
                        self.pos += 1;
                    }
                    self.out.push(Tok::Placeholder);
                }
                '%' if self.percent_placeholder_len().is_some() => {
                    self.pos += self.percent_placeholder_len().unwrap_or(1);
                    self.out.push(Tok::Placeholder);
                }
                ':' => self.colon(),
                _ if c.is_ascii_digit() => self.number(self.pos),
                '.' if self.is_digit_at(self.pos + 1) && self.sign_allowed() => {
                    self.number(self.pos)
                }
                '+' | '-' if self.sign_allowed() && self.signed_number_ahead() => {
                    self.pos = self.scan_number(self.pos + 1).0;
                    self.out.push(Tok::Placeholder);
                }
                _ if is_ident_start(c) => self.word(),
                '(' | ')' | ',' | '.' | ';' | '[' | ']' => {
                    self.pos += 1;
                    self.out.push(Tok::Punct(c));
                }
                _ if is_op_char(c) => self.operator(),
                _ => {
                    self.pos += 1;
                    self.out.push(Tok::Op(c.to_string()));
                }
            }
        }
        self.out
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.at(self.pos) {
            self.pos += 1;
            if c == '\n' {
                break;
            }
        }
    }

    /// Skips `/* … */`; an unterminated comment runs to the end.
    fn skip_block_comment(&mut self) {
        self.pos += 2;
        while let Some(c) = self.at(self.pos) {
            if c == '*' && self.at(self.pos + 1) == Some('/') {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
    }

    /// Skips the body of a string whose opening quote is already consumed, including the
    /// closing quote. A doubled quote is an escaped quote; with `backslash`, so is `\x`. An
    /// unterminated string runs to the end.
    fn skip_string(&mut self, quote: char, backslash: bool) {
        while let Some(c) = self.at(self.pos) {
            if backslash && c == '\\' {
                self.pos += 2;
            } else if c == quote {
                if self.at(self.pos + 1) == Some(quote) {
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = self.pos.min(self.chars.len());
    }

    /// `"name"` or `` `name` ``: the quotes go when the name reads the same without them.
    fn quoted_identifier(&mut self, quote: char) {
        self.pos += 1;
        let mut content = String::new();
        while let Some(c) = self.at(self.pos) {
            self.pos += 1;
            if c == quote {
                if self.at(self.pos) == Some(quote) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            content.push(c);
        }
        if self.out.last() == Some(&Tok::Keyword("SAVEPOINT")) {
            self.out.push(Tok::Placeholder);
        } else if is_bare_identifier(&content, self.after_dot()) {
            self.out.push(Tok::Ident(content));
        } else {
            let doubled = content.replace(quote, &format!("{quote}{quote}"));
            self.out
                .push(Tok::Ident(format!("{quote}{doubled}{quote}")));
        }
    }

    /// `$1` placeholders, `$tag$ … $tag$` strings, or a lone `$`.
    fn dollar(&mut self) {
        if self.is_digit_at(self.pos + 1) {
            self.pos += 1;
            while self.is_digit_at(self.pos) {
                self.pos += 1;
            }
            self.out.push(Tok::Placeholder);
            return;
        }
        // A dollar-quote tag: `$$` or `$name$` with `name` an identifier without `$`.
        let mut end = self.pos + 1;
        while let Some(c) = self.at(end) {
            let ok = if end == self.pos + 1 {
                is_ident_start(c)
            } else {
                c.is_alphanumeric() || c == '_'
            };
            if !ok || end - self.pos > MAX_DOLLAR_TAG {
                break;
            }
            end += 1;
        }
        if self.at(end) != Some('$') {
            self.pos += 1;
            self.out.push(Tok::Op("$".to_string()));
            return;
        }
        let tag: Vec<char> = self.chars[self.pos..=end].to_vec();
        let body = end + 1;
        let close = (body..self.chars.len())
            .find(|&i| self.chars[i..].starts_with(&tag))
            .map_or(self.chars.len(), |i| i + tag.len());
        self.pos = close;
        self.out.push(Tok::Placeholder);
    }

    /// The length of a psycopg2 placeholder at the cursor: `%s` or `%(name)s`.
    fn percent_placeholder_len(&self) -> Option<usize> {
        let p = self.pos;
        match self.at(p + 1)? {
            's' if !self.at(p + 2).is_some_and(is_ident_continue) => Some(2),
            '(' => {
                let mut i = p + 2;
                while self
                    .at(i)
                    .is_some_and(|c| is_ident_continue(c) || c == '.' || c == '-')
                {
                    i += 1;
                }
                let ok = i > p + 2
                    && self.at(i) == Some(')')
                    && self.at(i + 1) == Some('s')
                    && !self.at(i + 2).is_some_and(is_ident_continue);
                ok.then_some(i + 2 - p)
            }
            _ => None,
        }
    }

    /// `::` casts, `:name` / `:1` placeholders, or a lone `:`.
    fn colon(&mut self) {
        match self.at(self.pos + 1) {
            Some(':') => {
                self.pos += 2;
                self.out.push(Tok::Op("::".to_string()));
            }
            Some(c) if is_ident_start(c) || c.is_ascii_digit() => {
                self.pos += 1;
                while self.at(self.pos).is_some_and(is_ident_continue) {
                    self.pos += 1;
                }
                self.out.push(Tok::Placeholder);
            }
            _ => {
                self.pos += 1;
                self.out.push(Tok::Op(":".to_string()));
            }
        }
    }

    /// Where a numeric literal starting at `start` ends, and whether it runs straight into
    /// identifier characters (then it is a word such as `1st`, not a number).
    fn scan_number(&self, start: usize) -> (usize, bool) {
        let mut i = start;
        let is_hex_prefix = self.at(i) == Some('0')
            && matches!(self.at(i + 1), Some('x' | 'X'))
            && self.at(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
        if is_hex_prefix {
            i += 2;
            while self.at(i).is_some_and(|c| c.is_ascii_hexdigit()) {
                i += 1;
            }
        } else {
            while self.is_digit_at(i) {
                i += 1;
            }
            if self.at(i) == Some('.') {
                i += 1;
                while self.is_digit_at(i) {
                    i += 1;
                }
            }
            if matches!(self.at(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(self.at(j), Some('+' | '-')) {
                    j += 1;
                }
                if self.is_digit_at(j) {
                    i = j;
                    while self.is_digit_at(i) {
                        i += 1;
                    }
                }
            }
        }
        (i, self.at(i).is_some_and(is_ident_continue))
    }

    fn number(&mut self, start: usize) {
        let (end, into_word) = self.scan_number(start);
        if into_word {
            let mut i = end;
            while self.at(i).is_some_and(is_ident_continue) {
                i += 1;
            }
            self.out
                .push(Tok::Ident(self.chars[start..i].iter().collect()));
            self.pos = i;
        } else {
            self.out.push(Tok::Placeholder);
            self.pos = end;
        }
    }

    /// Whether the sign at the cursor starts a literal (`-1`, `+.5`); not when the digits run
    /// into a word (`-1st`), where the sign is an operator.
    fn signed_number_ahead(&self) -> bool {
        let starts = self.is_digit_at(self.pos + 1)
            || (self.at(self.pos + 1) == Some('.') && self.is_digit_at(self.pos + 2));
        starts && !self.scan_number(self.pos + 1).1
    }

    fn word(&mut self) {
        let start = self.pos;
        while self.at(self.pos).is_some_and(is_ident_continue) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        // String prefixes: E'…' (with backslash escapes), N'…', X'…', B'…', U&'…'.
        let next = self.at(self.pos);
        let lower = word.to_ascii_lowercase();
        if next == Some('\'') && matches!(lower.as_str(), "e" | "n" | "x" | "b") {
            self.pos += 1;
            self.skip_string('\'', lower == "e" || self.dialect == Dialect::MySql);
            self.out.push(Tok::Placeholder);
            return;
        }
        if lower == "u" && next == Some('&') && self.at(self.pos + 1) == Some('\'') {
            self.pos += 2;
            self.skip_string('\'', false);
            self.out.push(Tok::Placeholder);
            return;
        }
        let after_dot = self.after_dot();
        let tok = if after_dot {
            Tok::Ident(word)
        } else if self.out.last() == Some(&Tok::Keyword("SAVEPOINT")) || is_boolean(&word) {
            Tok::Placeholder
        } else if let Some(k) = keyword(&word) {
            Tok::Keyword(k)
        } else {
            Tok::Ident(word)
        };
        self.out.push(tok);
    }

    /// A run of operator characters, stopping before a comment, a psycopg2 placeholder or a
    /// signed literal, so that `a=-1` reads as `a = ?`.
    fn operator(&mut self) {
        let start = self.pos;
        self.pos += 1;
        while let Some(c) = self.at(self.pos) {
            let next = self.at(self.pos + 1);
            let stop = !is_op_char(c)
                || (c == '-' && next == Some('-'))
                || (c == '/' && next == Some('*'))
                || (c == '%' && self.percent_placeholder_len().is_some())
                || (c == '#' && self.dialect == Dialect::MySql)
                || (matches!(c, '+' | '-')
                    && (self.is_digit_at(self.pos + 1)
                        || (next == Some('.') && self.is_digit_at(self.pos + 2))));
            if stop {
                break;
            }
            self.pos += 1;
        }
        self.out
            .push(Tok::Op(self.chars[start..self.pos].iter().collect()));
    }
}

/// Collapses `IN (?, ?, …)` to `IN (?)` and the rows of `VALUES (…), (…)` to the distinct
/// consecutive rows, with all-placeholder rows as `(?)`. A list cut off by the end of the
/// query collapses too, so truncated queries group with complete ones.
fn collapse(toks: &[Tok], depth: usize) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Keyword("IN") if toks.get(i + 1) == Some(&Tok::Punct('(')) => {
                out.push(toks[i].clone());
                if let Some(end) = placeholder_list_end(toks, i + 2) {
                    out.extend([Tok::Punct('('), Tok::Placeholder, Tok::Punct(')')]);
                    i = end;
                } else {
                    i += 1;
                }
            }
            Tok::Keyword("VALUES") => {
                out.push(toks[i].clone());
                i = collapse_rows(toks, i + 1, &mut out, depth);
            }
            t => {
                out.push(t.clone());
                i += 1;
            }
        }
    }
    out
}

/// If `toks[start..]` is a list of placeholders closed by `)` (or cut off by the end), the
/// index after it.
fn placeholder_list_end(toks: &[Tok], start: usize) -> Option<usize> {
    let mut any = false;
    for (j, t) in toks.iter().enumerate().skip(start) {
        match t {
            Tok::Placeholder => any = true,
            Tok::Punct(',') => {}
            Tok::Punct(')') => return any.then_some(j + 1),
            _ => return None,
        }
    }
    Some(toks.len())
}

/// The rows after `VALUES`, starting at `i`; returns the index after the last row.
fn collapse_rows(toks: &[Tok], mut i: usize, out: &mut Vec<Tok>, depth: usize) -> usize {
    let mut previous: Option<Vec<Tok>> = None;
    while toks.get(i) == Some(&Tok::Punct('(')) {
        let close = matching_paren(toks, i);
        let raw = &toks[i + 1..close.unwrap_or(toks.len())];
        let inner = if depth < MAX_VALUES_DEPTH {
            collapse(raw, depth + 1)
        } else {
            raw.to_vec()
        };
        let all_placeholders = inner
            .iter()
            .all(|t| matches!(t, Tok::Placeholder | Tok::Punct(',')))
            && (close.is_none() || inner.contains(&Tok::Placeholder));
        let (inner, closed) = if all_placeholders {
            (vec![Tok::Placeholder], true)
        } else {
            (inner, close.is_some())
        };
        if previous.as_ref() != Some(&inner) {
            if previous.is_some() {
                out.push(Tok::Punct(','));
            }
            out.push(Tok::Punct('('));
            out.extend(inner.iter().cloned());
            if closed {
                out.push(Tok::Punct(')'));
            }
            previous = Some(inner);
        }
        i = close.map_or(toks.len(), |c| c + 1);
        if toks.get(i) != Some(&Tok::Punct(',')) {
            break;
        }
        match toks.get(i + 1) {
            None => return i + 1, // a trailing comma of a cut-off list
            Some(Tok::Punct('(')) => i += 1,
            Some(_) => break,
        }
    }
    i
}

/// The index of the `)` closing the `(` at `open`, if the query has one.
fn matching_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, tok) in toks.iter().enumerate() {
        if i > 0 && space_between(toks.get(i.wrapping_sub(2)), &toks[i - 1], tok) {
            out.push(' ');
        }
        match tok {
            Tok::Keyword(k) => out.push_str(k),
            Tok::Ident(s) | Tok::Op(s) => out.push_str(s),
            Tok::Placeholder => out.push('?'),
            Tok::Punct(c) => out.push(*c),
        }
    }
    out
}

/// The canonical spacing: decided by the tokens alone, so whitespace in the input never
/// matters.
fn space_between(before_prev: Option<&Tok>, prev: &Tok, cur: &Tok) -> bool {
    if matches!(cur, Tok::Punct(',' | ')' | ']' | '.' | ';')) {
        return false;
    }
    if let Tok::Punct('.') = prev {
        // `t. 1x`, not `t.1x`, which would read back as a number.
        return matches!(cur, Tok::Ident(s) if s.starts_with(|c: char| c.is_ascii_digit()));
    }
    if matches!(prev, Tok::Punct('(' | '[')) {
        return false;
    }
    // `a::int`, but `:: :` stays apart so that it never reads back as `:::`.
    match (prev, cur) {
        (Tok::Op(a), Tok::Op(b)) if a == "::" || b == "::" => return true,
        (Tok::Op(o), _) | (_, Tok::Op(o)) if o == "::" => return false,
        _ => {}
    }
    match cur {
        Tok::Punct('(') => match prev {
            Tok::Ident(_) => {
                matches!(before_prev, Some(Tok::Keyword(k)) if LIST_AFTER_NAME.contains(k))
            }
            Tok::Keyword(k) => !FUNCTION_KEYWORDS.contains(k),
            _ => true,
        },
        Tok::Punct('[') => match prev {
            Tok::Ident(_) | Tok::Placeholder | Tok::Punct(')' | ']') => false,
            Tok::Keyword(k) => *k != "ARRAY",
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests;
