//! DSNs: `{scheme}://{public_key}[:{secret_key}]@{host[:port]}{path}/{project_id}`, parsed,
//! printed, and turned into the endpoint URLs a client posts to.
//!
//! The project id is the last path segment; everything between the host and it is a path prefix
//! (a server mounted under `/sentry` gives `http://key@host/sentry/1`). The secret key is
//! deprecated and optional.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::ids::{ProjectId, PublicKey};

/// A parsed DSN. `Display` prints it back in the same form it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dsn {
    /// `http` or `https`, lowercase.
    pub scheme: String,
    pub public_key: String,
    pub secret_key: Option<String>,
    /// Host with the port when one was given: `127.0.0.1:9000`, `[::1]:9000`, `sentry.example.com`.
    pub host: String,
    /// Path prefix before the project id: `""` or `/sub` (never a trailing slash).
    pub path: String,
    /// The last path segment, as a string (DSNs treat every segment as a string).
    pub project_id: String,
}

/// Why a string is not a DSN.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DsnError {
    #[error("DSN has no scheme (expected `http://` or `https://`)")]
    MissingScheme,
    #[error("DSN scheme `{0}` is not supported (expected `http` or `https`)")]
    UnsupportedScheme(String),
    #[error("DSN has no public key (expected `scheme://KEY@host/PROJECT_ID`)")]
    MissingPublicKey,
    #[error("DSN has no host")]
    MissingHost,
    #[error("DSN host `{0}` is not valid")]
    InvalidHost(String),
    #[error("DSN has no project id (expected the last path segment, as in `/1`)")]
    MissingProjectId,
}

impl Dsn {
    /// The DSN of a project on the server reached at `public_url` (`http://127.0.0.1:9000`,
    /// `https://example.com/sentry`): the key goes before the host, the project id after the
    /// URL's path. A trailing slash, a query string or a fragment of the URL is dropped.
    pub fn for_project(
        public_url: &str,
        public_key: &PublicKey,
        project: ProjectId,
    ) -> Result<Dsn, DsnError> {
        let (scheme, authority, path) = split_url(public_url)?;
        if public_key.0.is_empty() {
            return Err(DsnError::MissingPublicKey);
        }
        validate_host(authority)?;
        Ok(Dsn {
            scheme,
            public_key: public_key.0.clone(),
            secret_key: None,
            host: authority.to_string(),
            path: path.trim_end_matches('/').to_string(),
            project_id: project.0.to_string(),
        })
    }

    /// The envelope endpoint: `{scheme}://{host}{path}/api/{project_id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        self.api_url("envelope")
    }

    /// The legacy store endpoint: `{scheme}://{host}{path}/api/{project_id}/store/`.
    pub fn store_url(&self) -> String {
        self.api_url("store")
    }

    /// The project id as a number, when it is one (our own DSNs always are).
    pub fn project(&self) -> Option<ProjectId> {
        self.project_id.parse::<i64>().ok().map(ProjectId)
    }

    /// The public key as a typed id.
    pub fn key(&self) -> PublicKey {
        PublicKey(self.public_key.clone())
    }

    fn api_url(&self, endpoint: &str) -> String {
        format!(
            "{}://{}{}/api/{}/{}/",
            self.scheme, self.host, self.path, self.project_id, endpoint
        )
    }
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Dsn, DsnError> {
        let (scheme, authority, path) = split_url(s)?;
        let (userinfo, host) = authority
            .rsplit_once('@')
            .ok_or(DsnError::MissingPublicKey)?;
        let (public_key, secret_key) = match userinfo.split_once(':') {
            Some((key, secret)) => (key, (!secret.is_empty()).then(|| secret.to_string())),
            None => (userinfo, None),
        };
        if public_key.is_empty() {
            return Err(DsnError::MissingPublicKey);
        }
        validate_host(host)?;
        let path = path.strip_suffix('/').unwrap_or(path);
        let (prefix, project_id) = path.rsplit_once('/').unwrap_or(("", ""));
        if project_id.is_empty() {
            return Err(DsnError::MissingProjectId);
        }
        Ok(Dsn {
            scheme,
            public_key: public_key.to_string(),
            secret_key,
            host: host.to_string(),
            path: prefix.to_string(),
            project_id: project_id.to_string(),
        })
    }
}

/// Splits `scheme://authority/path` into the lowercase scheme, the authority and the path
/// (`""` or starting with `/`). Only `http` and `https`; a query string or fragment carries
/// nothing we use and is ignored.
fn split_url(s: &str) -> Result<(String, &str, &str), DsnError> {
    let (scheme, rest) = s.trim().split_once("://").ok_or(DsnError::MissingScheme)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(if scheme.is_empty() {
            DsnError::MissingScheme
        } else {
            DsnError::UnsupportedScheme(scheme)
        });
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    Ok(match rest.find('/') {
        Some(i) => (scheme, &rest[..i], &rest[i..]),
        None => (scheme, rest, ""),
    })
}

/// Accepts `name`, `name:port`, `[v6]` and `[v6]:port`; refuses empty hosts, empty or
/// non-numeric ports and characters that cannot appear in a host.
fn validate_host(host: &str) -> Result<(), DsnError> {
    if host.is_empty() {
        return Err(DsnError::MissingHost);
    }
    let invalid = || DsnError::InvalidHost(host.to_string());
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(invalid)?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(invalid());
        }
        match after {
            "" => (addr, None),
            _ => (addr, Some(after.strip_prefix(':').ok_or_else(invalid)?)),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || "/\\@[]".contains(c);
    if name.is_empty() || name.chars().any(bad_char) {
        return Err(invalid());
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    Ok(())
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.public_key)?;
        if let Some(secret) = &self.secret_key {
            write!(f, ":{secret}")?;
        }
        write!(f, "@{}{}/{}", self.host, self.path, self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(s: &str) -> Dsn {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn round_trips() {
        for s in [
            "http://key@127.0.0.1:9000/1",
            "https://public@sentry.example.com/42",
            "http://0123456789abcdef:fedcba9876543210@127.0.0.1:41234/1",
            "https://key@example.com/sub/path/7",
            "http://key@[::1]:9000/3",
        ] {
            assert_eq!(dsn(s).to_string(), s);
        }
    }

    #[test]
    fn fields() {
        let d = dsn("http://key:secret@127.0.0.1:9000/sentry/12");
        assert_eq!(d.scheme, "http");
        assert_eq!(d.public_key, "key");
        assert_eq!(d.secret_key.as_deref(), Some("secret"));
        assert_eq!(d.host, "127.0.0.1:9000");
        assert_eq!(d.path, "/sentry");
        assert_eq!(d.project_id, "12");
        assert_eq!(d.project(), Some(ProjectId(12)));
        assert_eq!(d.key(), PublicKey("key".into()));
        assert_eq!(
            d.envelope_url(),
            "http://127.0.0.1:9000/sentry/api/12/envelope/"
        );
        assert_eq!(d.store_url(), "http://127.0.0.1:9000/sentry/api/12/store/");
    }

    #[test]
    fn lenient_forms() {
        // Trailing slash, upper-case scheme, empty secret, a query string, surrounding space.
        let d = dsn("  HTTPS://key:@host.example/5/?x=1 ");
        assert_eq!(d.to_string(), "https://key@host.example/5");
        assert_eq!(dsn("http://k@h/notanumber").project(), None);
    }

    #[test]
    fn for_project_parses_back_to_the_same_parts() {
        let key = PublicKey("0123456789abcdef0123456789abcdef".into());
        let cases = [
            ("http://127.0.0.1:9000", "127.0.0.1:9000", ""),
            ("https://example.com/sentry", "example.com", "/sentry"),
            ("https://example.com/sentry/", "example.com", "/sentry"),
            ("HTTPS://example.com:8443/a/b", "example.com:8443", "/a/b"),
            ("http://[::1]:9000", "[::1]:9000", ""),
        ];
        for (url, host, path) in cases {
            let made =
                Dsn::for_project(url, &key, ProjectId(7)).unwrap_or_else(|e| panic!("{url}: {e}"));
            let back: Dsn = made
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{made}: {e}"));
            assert_eq!(back, made, "{url}");
            assert_eq!(back.key(), key, "{url}");
            assert_eq!(
                (back.host.as_str(), back.path.as_str()),
                (host, path),
                "{url}"
            );
            assert_eq!(back.project(), Some(ProjectId(7)), "{url}");
        }
        assert_eq!(
            Dsn::for_project("https://example.com/sentry", &key, ProjectId(7))
                .unwrap()
                .to_string(),
            "https://0123456789abcdef0123456789abcdef@example.com/sentry/7"
        );
    }

    #[test]
    fn for_project_refuses_what_is_not_a_server_url() {
        let key = PublicKey("k".into());
        let cases = [
            ("127.0.0.1:9000", DsnError::MissingScheme),
            (
                "ftp://example.com",
                DsnError::UnsupportedScheme("ftp".into()),
            ),
            ("http://", DsnError::MissingHost),
            (
                "http://host:port",
                DsnError::InvalidHost("host:port".into()),
            ),
            (
                "http://user@host",
                DsnError::InvalidHost("user@host".into()),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(
                Dsn::for_project(url, &key, ProjectId(1)),
                Err(want),
                "{url}"
            );
        }
        assert_eq!(
            Dsn::for_project("http://host", &PublicKey(String::new()), ProjectId(1)),
            Err(DsnError::MissingPublicKey)
        );
    }

    #[test]
    fn errors() {
        let cases = [
            ("", DsnError::MissingScheme),
            ("key@host/1", DsnError::MissingScheme),
            ("://key@host/1", DsnError::MissingScheme),
            (
                "ftp://key@host/1",
                DsnError::UnsupportedScheme("ftp".into()),
            ),
            ("http://host/1", DsnError::MissingPublicKey),
            ("http://:secret@host/1", DsnError::MissingPublicKey),
            ("http://key@/1", DsnError::MissingHost),
            ("http://key@host", DsnError::MissingProjectId),
            ("http://key@host/", DsnError::MissingProjectId),
            (
                "http://key@host:80x/1",
                DsnError::InvalidHost("host:80x".into()),
            ),
            ("http://key@host:/1", DsnError::InvalidHost("host:".into())),
            ("http://key@[::1/1", DsnError::InvalidHost("[::1".into())),
            ("http://key@ho st/1", DsnError::InvalidHost("ho st".into())),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Dsn>(), Err(want), "{s:?}");
        }
        assert_eq!(
            "ftp://k@h/1".parse::<Dsn>().unwrap_err().to_string(),
            "DSN scheme `ftp` is not supported (expected `http` or `https`)"
        );
    }
}
