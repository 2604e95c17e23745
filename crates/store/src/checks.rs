//! What the store refuses whatever the backend: names too long or without letters, addresses
//! that are not email addresses, an issuer that is not a URL, release versions and
//! environments that can't be part of a URL, a chunk whose SHA-1 is not its content's. Each check says why, for the
//! person who typed it (`StoreError::Invalid`).

use crate::{Result, StoreError};

/// Longest project, organisation, team or token name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// Turns a name into a slug: lowercase letters, digits and dashes.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A project's display name, refused when longer than [`MAX_NAME_CHARS`].
pub(crate) fn project_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Invalid(format!("a project name can be at most {MAX_NAME_CHARS} characters long")));
    }
    Ok(name)
}

/// The slug of a new project, or why the name can't have one.
pub(crate) fn project_slug(name: &str) -> Result<String> {
    project_name(name)?;
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(StoreError::Invalid(format!("\"{name}\" cannot be a project name: use letters, digits and dashes")));
    }
    Ok(slug)
}

/// A slug for a new organisation or team (`what`), or why the name can't have one.
pub(crate) fn slug_for(name: &str, what: &str) -> Result<String> {
    let slug = slugify(name);
    if slug.is_empty() || name.trim().chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Invalid(format!(
            "\"{name}\" cannot be a {what} name: use letters, digits and dashes, at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(slug)
}

/// An email address, trimmed; refused when it is not one.
pub(crate) fn email(email: &str) -> Result<&str> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(StoreError::Invalid(format!("\"{email}\" is not an email address")));
    }
    Ok(email)
}

/// A token's name, trimmed; refused when too long.
pub(crate) fn token_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::Invalid(format!("a token's name can be at most {MAX_NAME_CHARS} characters long")));
    }
    Ok(name)
}

/// A single sign-on issuer: an http(s) URL.
pub(crate) fn issuer(issuer: &str) -> Result<()> {
    if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
        return Err(StoreError::Invalid(format!("the issuer \"{issuer}\" is not a URL")));
    }
    Ok(())
}

/// A release version: at most 200 characters, no slashes, line breaks or tabs (it is part of
/// URLs), not `.` or `..`; trimmed.
pub(crate) fn release_version(version: &str) -> Result<&str> {
    let version = version.trim();
    if version.is_empty() || version.len() > 200 || version.contains(['\n', '\r', '\t', '/']) || version == "." || version == ".." {
        return Err(StoreError::Invalid(format!(
            "\"{version}\" cannot be a release version: use at most 200 characters, no slashes or line breaks"
        )));
    }
    Ok(version)
}

/// A deploy's environment name, trimmed: at most 64 characters, without slashes.
pub(crate) fn environment(env: &str) -> Result<&str> {
    let env = env.trim();
    if env.is_empty() || env.len() > 64 || env.contains(['\n', '\r', '/']) {
        return Err(StoreError::Invalid("a deploy needs an environment name of at most 64 characters, without slashes".into()));
    }
    Ok(env)
}

/// The hex SHA-1 of `data`.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(data))
}

/// An uploaded chunk's SHA-1, checked against its content; the actual one, lowercase.
pub(crate) fn chunk_sha1(claimed: &str, data: &[u8]) -> Result<String> {
    let actual = sha1_hex(data);
    if !actual.eq_ignore_ascii_case(claimed) {
        return Err(StoreError::Invalid(format!("the chunk's SHA-1 is {actual}, not {claimed}")));
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("My Shop!"), "my-shop");
        assert_eq!(slugify("  default "), "default");
        assert_eq!(slugify("***"), "");
        assert!(project_slug("***").is_err());
        assert!(slug_for(&"x".repeat(101), "team").is_err());
    }

    #[test]
    fn emails_and_issuers() {
        assert_eq!(email(" a@b.c ").unwrap(), "a@b.c");
        assert!(email("nobody").is_err());
        assert!(issuer("ftp://x").is_err());
        assert!(issuer("https://id.example.com").is_ok());
    }
}
