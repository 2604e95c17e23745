//! Client authentication as sent on the wire: the `X-Sentry-Auth` header, `Authorization:
//! Sentry …` or `Authorization: Basic base64(key:)`, the `sentry_*` query parameters that
//! browsers use, and the auth a DSN implies.
//!
//! Only the public key matters for authentication; the secret is deprecated and tolerated,
//! `sentry_timestamp` is ignored, and `sentry_client` names the SDK.

use base64::Engine as _;
use thiserror::Error;

use crate::dsn::Dsn;
use crate::ids::PublicKey;

/// The auth parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// `sentry_key`: the public key. Never empty.
    pub key: String,
    /// `sentry_secret` (deprecated).
    pub secret: Option<String>,
    /// `sentry_version` as sent: `7`, `6`, `2.0`.
    pub version: Option<String>,
    /// `sentry_client`: `sentry.python/2.75.0`, `raven-python/6.10.0`.
    pub client: Option<String>,
}

/// Why a request's auth could not be read. The HTTP layer answers 401, or 400 for
/// [`AuthError::TwoKeys`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("the request names two different client keys; send one")]
    TwoKeys,
    #[error("auth has no sentry_key")]
    MissingKey,
    #[error("auth header is not of the `Sentry` scheme")]
    NotSentry,
    #[error("malformed auth: {0}")]
    Malformed(String),
}

impl Auth {
    /// Parses `X-Sentry-Auth: Sentry sentry_key=…, sentry_version=7, …`. The `Sentry` prefix is
    /// case-insensitive (and may be missing when the value starts with `sentry_`); pairs are
    /// comma-separated `name=value`, values may be double-quoted. Unknown names are ignored.
    pub fn from_header(header: &str) -> Result<Auth, AuthError> {
        let header = header.trim();
        let params = match header.split_once(char::is_whitespace) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sentry") => rest,
            _ if header.eq_ignore_ascii_case("sentry") => "",
            _ if header
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("sentry_")) =>
            {
                header
            }
            _ => return Err(AuthError::NotSentry),
        };
        let mut pairs = Vec::new();
        for part in params.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=').ok_or_else(|| {
                AuthError::Malformed(format!("expected `name=value`, got `{}`", clip(part)))
            })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            pairs.push((name.trim().to_string(), value.to_string()));
        }
        Auth::from_pairs(pairs)
    }

    /// Parses an `Authorization` header: `Sentry …` (as [`Auth::from_header`]) or
    /// `Basic base64(key:secret)` with an optional secret.
    pub fn from_authorization(header: &str) -> Result<Auth, AuthError> {
        let header = header.trim();
        let Some((scheme, rest)) = header.split_once(char::is_whitespace) else {
            return Auth::from_header(header);
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Auth::from_header(header);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|e| AuthError::Malformed(format!("Basic credentials are not base64: {e}")))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8".into()))?;
        let (key, secret) = text.split_once(':').unwrap_or((&text, ""));
        let mut pairs = vec![("sentry_key".to_string(), key.to_string())];
        if !secret.is_empty() {
            pairs.push(("sentry_secret".to_string(), secret.to_string()));
        }
        Auth::from_pairs(pairs)
    }

    /// Parses a URL query string (`sentry_key=…&sentry_version=7`, with or without the leading
    /// `?`), percent-decoding names and values (`+` is a space). Other parameters are ignored.
    pub fn from_query(query: &str) -> Result<Auth, AuthError> {
        let query = query.trim().trim_start_matches('?');
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = percent_decode(name)?;
            if name.starts_with("sentry_") {
                pairs.push((name, percent_decode(value)?));
            }
        }
        Auth::from_pairs(pairs)
    }

    /// The auth a DSN implies: its public key and secret, no version or client.
    pub fn from_dsn(dsn: &Dsn) -> Auth {
        Auth {
            key: dsn.public_key.clone(),
            secret: dsn.secret_key.clone(),
            version: None,
            client: None,
        }
    }

    /// The public key as a typed id.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.clone())
    }

    /// The protocol version's major number: `7` for `"7"`, `2` for raven-js's `"2.0"`.
    pub fn protocol_version(&self) -> Option<u32> {
        let v = self.version.as_deref()?.trim();
        v.split('.').next()?.parse().ok()
    }

    /// The `X-Sentry-Auth` header value for this auth, as a client would send it.
    pub fn to_header(&self) -> String {
        let mut out = format!("Sentry sentry_key={}", self.key);
        if let Some(v) = &self.version {
            out.push_str(&format!(", sentry_version={v}"));
        }
        if let Some(c) = &self.client {
            out.push_str(&format!(", sentry_client={c}"));
        }
        if let Some(s) = &self.secret {
            out.push_str(&format!(", sentry_secret={s}"));
        }
        out
    }

    /// Builds an `Auth` from `sentry_*` pairs; the first occurrence of a name wins.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<Auth, AuthError> {
        let mut auth = Auth::default();
        let mut key: Option<String> = None;
        for (name, value) in pairs {
            if name == "sentry_key"
                && !value.is_empty()
                && key.as_ref().is_some_and(|k| *k != value)
            {
                return Err(AuthError::TwoKeys);
            }
            let slot = match name.as_str() {
                "sentry_key" => &mut key,
                "sentry_secret" => &mut auth.secret,
                "sentry_version" => &mut auth.version,
                "sentry_client" => &mut auth.client,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value);
            }
        }
        auth.key = key.ok_or(AuthError::MissingKey)?;
        Ok(auth)
    }
}

/// Decodes `%XX` escapes and `+`. A `%` not followed by two hex digits is kept as is.
fn percent_decode(s: &str) -> Result<String, AuthError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| AuthError::Malformed(format!("query parameter `{}` is not UTF-8", clip(s))))
}

/// At most 64 characters of client text, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn modern_python_and_rust_headers() {
        let a = Auth::from_header(&format!(
            "Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.75.0"
        ))
        .unwrap();
        assert_eq!(a.key, KEY);
        assert_eq!(a.version.as_deref(), Some("7"));
        assert_eq!(a.client.as_deref(), Some("sentry.python/2.75.0"));
        assert_eq!(a.secret, None);
        assert_eq!(a.protocol_version(), Some(7));

        let r = Auth::from_header(&format!(
            "Sentry sentry_key={KEY}, sentry_version=7, sentry_timestamp=1795497359.9, sentry_client=sentry.rust/0.49.5"
        ))
        .unwrap();
        assert_eq!(r.client.as_deref(), Some("sentry.rust/0.49.5"));
    }

    #[test]
    fn raven_header_with_secret_and_odd_spacing() {
        let a = Auth::from_header(&format!(
            "sentry  sentry_timestamp=1795497341.19,sentry_client=raven-python/6.10.0 , \
             sentry_version=6, sentry_key=\"{KEY}\", sentry_secret=fedcba, "
        ))
        .unwrap();
        assert_eq!(a.key, KEY);
        assert_eq!(a.secret.as_deref(), Some("fedcba"));
        assert_eq!(a.protocol_version(), Some(6));
        // Without the scheme word, but clearly sentry parameters.
        assert_eq!(
            Auth::from_header(&format!("sentry_key={KEY}")).unwrap().key,
            KEY
        );
        // raven-js
        let js = Auth::from_header("Sentry sentry_key=k, sentry_version=2.0").unwrap();
        assert_eq!(js.protocol_version(), Some(2));
    }

    #[test]
    fn header_errors() {
        assert_eq!(Auth::from_header("Bearer abc"), Err(AuthError::NotSentry));
        assert_eq!(Auth::from_header(""), Err(AuthError::NotSentry));
        assert_eq!(Auth::from_header("Sentry"), Err(AuthError::MissingKey));
        assert_eq!(
            Auth::from_header("Sentry sentry_version=7"),
            Err(AuthError::MissingKey)
        );
        assert_eq!(
            Auth::from_header("Sentry sentry_key="),
            Err(AuthError::MissingKey)
        );
        assert_eq!(
            Auth::from_header("Sentry key=abc"),
            Err(AuthError::MissingKey)
        );
        let err = Auth::from_header("Sentry sentry_key=k, garbage").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed auth: expected `name=value`, got `garbage`"
        );
    }

    #[test]
    fn authorization_forms() {
        let s = Auth::from_authorization(&format!("Sentry sentry_key={KEY}")).unwrap();
        assert_eq!(s.key, KEY);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"));
        let b = Auth::from_authorization(&format!("Basic {b64}")).unwrap();
        assert_eq!((b.key.as_str(), b.secret), (KEY, None));
        let b64 = base64::engine::general_purpose::STANDARD.encode("k:s");
        assert_eq!(
            Auth::from_authorization(&format!("basic {b64}"))
                .unwrap()
                .secret
                .as_deref(),
            Some("s")
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(":s");
        assert_eq!(
            Auth::from_authorization(&format!("Basic {b64}")),
            Err(AuthError::MissingKey)
        );
        assert!(matches!(
            Auth::from_authorization("Basic !!!"),
            Err(AuthError::Malformed(_))
        ));
        assert_eq!(
            Auth::from_authorization("Bearer t"),
            Err(AuthError::NotSentry)
        );
    }

    #[test]
    fn query_strings() {
        let a = Auth::from_query(&format!(
            "?sentry_version=7&sentry_key={KEY}&sentry_client=sentry.javascript.browser%2F8.1.0&other=1"
        ))
        .unwrap();
        assert_eq!(a.key, KEY);
        assert_eq!(a.client.as_deref(), Some("sentry.javascript.browser/8.1.0"));
        assert_eq!(a.version.as_deref(), Some("7"));
        let plus = Auth::from_query("sentry_key=a+b%2").unwrap();
        assert_eq!(plus.key, "a b%2");
        assert_eq!(
            Auth::from_query("sentry_version=7"),
            Err(AuthError::MissingKey)
        );
        assert_eq!(Auth::from_query(""), Err(AuthError::MissingKey));
        assert!(matches!(
            Auth::from_query("sentry_key=%ff"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn two_different_keys_are_refused_the_same_key_twice_is_not() {
        assert_eq!(
            Auth::from_query("sentry_key=a&sentry_key=b"),
            Err(AuthError::TwoKeys)
        );
        assert_eq!(
            Auth::from_header("Sentry sentry_key=a, sentry_version=7, sentry_key=b"),
            Err(AuthError::TwoKeys)
        );
        assert_eq!(
            AuthError::TwoKeys.to_string(),
            "the request names two different client keys; send one"
        );
        assert_eq!(
            Auth::from_query("sentry_key=a&sentry_key=a").unwrap().key,
            "a"
        );
        // An empty value names no key.
        assert_eq!(
            Auth::from_query("sentry_key=&sentry_key=a&sentry_key=")
                .unwrap()
                .key,
            "a"
        );
        // Percent-encoding is decoded first: the same key either way.
        assert_eq!(Auth::from_query("sentry_key=a%62&sentry_key=ab").unwrap().key, "ab");
    }

    #[test]
    fn dsn_and_header_round_trip() {
        let dsn: Dsn = "http://pub:sec@127.0.0.1:9000/1".parse().unwrap();
        let mut a = Auth::from_dsn(&dsn);
        assert_eq!(a.public_key(), PublicKey("pub".into()));
        a.version = Some("7".into());
        a.client = Some("tool/1".into());
        assert_eq!(Auth::from_header(&a.to_header()).unwrap(), a);
    }
}
