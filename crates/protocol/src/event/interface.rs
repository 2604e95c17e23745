//! The parts of an event that clients send under two names: the modern key (`exception`) and
//! raven's legacy interface name (`sentry.interfaces.Exception`). One list, read by the
//! normaliser and by whatever shows a stored event's JSON.

use serde_json::{Map, Value};

/// A part of an event that has a legacy `sentry.interfaces.*` name beside its modern key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    Exception,
    Stacktrace,
    /// `logentry`; a plain `message` key is read after it, by the caller.
    Message,
    Query,
    Request,
    User,
    Contexts,
}

impl Interface {
    pub const ALL: [Interface; 7] = [
        Interface::Exception,
        Interface::Stacktrace,
        Interface::Message,
        Interface::Query,
        Interface::Request,
        Interface::User,
        Interface::Contexts,
    ];

    /// The keys it is read from, in the order they are tried.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Interface::Exception => &["exception", "sentry.interfaces.Exception"],
            Interface::Stacktrace => &["stacktrace", "sentry.interfaces.Stacktrace"],
            Interface::Message => &["logentry", "sentry.interfaces.Message"],
            // raven sends the legacy name with an object; `query` may also be a bare SQL string.
            Interface::Query => &["sentry.interfaces.Query", "query"],
            Interface::Request => &["request", "sentry.interfaces.Http"],
            Interface::User => &["user", "sentry.interfaces.User"],
            Interface::Contexts => &["contexts", "sentry.interfaces.Contexts"],
        }
    }

    /// The value in an event's JSON object under the first of [`Interface::keys`] that is
    /// present and not null.
    pub fn get(self, event: &Map<String, Value>) -> Option<&Value> {
        self.keys()
            .iter()
            .find_map(|k| event.get(*k).filter(|v| !v.is_null()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn modern_key_legacy_name_and_null() {
        let modern = obj(json!({"exception": {"values": []}}));
        assert_eq!(
            Interface::Exception.get(&modern),
            Some(&json!({"values": []}))
        );
        let legacy = obj(json!({"exception": null, "sentry.interfaces.Exception": [1]}));
        assert_eq!(Interface::Exception.get(&legacy), Some(&json!([1])));
        let both = obj(json!({"user": {"id": "a"}, "sentry.interfaces.User": {"id": "b"}}));
        assert_eq!(Interface::User.get(&both), Some(&json!({"id": "a"})));
        assert_eq!(Interface::Request.get(&obj(json!({"url": "x"}))), None);
    }

    #[test]
    fn every_name_is_one_the_pruned_parse_keeps() {
        for i in Interface::ALL {
            for k in i.keys() {
                assert!(super::super::prune::is_top_key(k), "{k}");
            }
        }
    }
}
