//! What the HTTP plugins share: one lazily built client (rustls with ring, a few redirects at
//! most) and the rule that turns an answer into a delivery outcome — 2xx delivered; 408, 429
//! and 5xx retried later; any other status given up, with the start of the answer as the
//! reason.

use std::sync::OnceLock;
use std::time::Duration;

use crate::plugin::{DeliveryError, Settings, SettingsExt};

/// The longest one request may take when a plugin's settings don't say.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client, built at the first request.
#[derive(Default)]
pub(crate) struct Http {
    client: OnceLock<reqwest::Client>,
}

impl Http {
    pub(crate) fn client(&self) -> Result<&reqwest::Client, DeliveryError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("sentry-notify/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .connect_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| DeliveryError::Permanent(format!("can't set up the HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Sends `req` within `timeout_seconds` of `settings` (else [`DEFAULT_TIMEOUT`]); `what`
    /// names the request in errors (never a secret). Returns the answer when it is a 2xx.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder, settings: &Settings, what: &str) -> Result<reqwest::Response, DeliveryError> {
        let timeout = settings.number("timeout_seconds").map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        // Without the URL in the error: some carry a secret in their path or query.
        let resp = req.timeout(timeout).send().await.map_err(|e| DeliveryError::Retry(format!("{what}: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
        let why = format!("{what} answered {status}: {}", text.trim());
        if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
            Err(DeliveryError::Retry(why))
        } else {
            Err(DeliveryError::Permanent(why))
        }
    }
}

/// `url` with `segments` appended as path segments (each percent-encoded), for ids that hold
/// `!`, `:`, `#` or `/`.
pub(crate) fn join(url: &str, segments: &[&str]) -> Result<reqwest::Url, DeliveryError> {
    let mut u = reqwest::Url::parse(url).map_err(|e| DeliveryError::Permanent(format!("{url} is not a URL: {e}")))?;
    u.path_segments_mut()
        .map_err(|()| DeliveryError::Permanent(format!("{url} can't have a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(u)
}

/// The `timeout_seconds` setting every HTTP plugin takes.
pub(crate) const TIMEOUT_FIELD: crate::Field = crate::Field {
    name: "timeout_seconds",
    kind: crate::FieldKind::Number { min: 1, max: 300 },
    required: false,
    default: "10",
    help: "how long one attempt may take",
};

#[cfg(test)]
mod tests {
    #[test]
    fn join_encodes_each_segment() {
        let u = super::join("https://matrix.example.org/", &["_matrix", "client", "v3", "rooms", "!abc:example.org", "send"]).unwrap();
        assert_eq!(u.as_str(), "https://matrix.example.org/_matrix/client/v3/rooms/!abc:example.org/send");
        let u = super::join("https://api.example.com/v2", &["alerts", "#a/b c"]).unwrap();
        assert_eq!(u.as_str(), "https://api.example.com/v2/alerts/%23a%2Fb%20c");
    }
}
