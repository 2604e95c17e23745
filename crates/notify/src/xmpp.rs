//! The XMPP plugin: a message to a person, or to a multi-user chat room, from an account of
//! its own. Built on `tokio-xmpp` (the XML stream, SASL SCRAM or PLAIN) and `xmpp-parsers` (the
//! stanzas), with STARTTLS here ([`StartTls`]: rustls with ring, the usual roots plus an
//! optional private CA), one short connection per message: log in, bind, join the
//! room when there is one (XEP-0045), send, then a ping to the server (XEP-0199) whose answer
//! confirms that nothing before it was refused — XMPP has no acknowledgement of its own.
//!
//! A refused login (wrong password, unknown account) or a refused message or room join is given
//! up; a server that is down, slow or drops the connection is retried.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sasl::common::Credentials;
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::connect::{DnsConfig, ServerConnector, TcpServerConnector};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::bind::BindQuery;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement, initiate_stream};
use tokio_xmpp::{Error, Stanza};

use crate::plugin::{Delivery, DeliveryError, Field, FieldKind, Plugin, SettingError, Settings, SettingsExt};
use crate::Notification;

const FIELDS: &[Field] = &[
    Field { name: "jid", kind: FieldKind::Text, required: true, default: "", help: "the account that sends, for example \"sentry@example.org\"" },
    Field { name: "password", kind: FieldKind::Secret, required: true, default: "", help: "that account's password" },
    Field { name: "to", kind: FieldKind::Text, required: true, default: "", help: "who gets the message (\"ops@example.org\"), or the room's address with room = true (\"ops@conference.example.org\")" },
    Field { name: "room", kind: FieldKind::Bool, required: false, default: "false", help: "`to` is a multi-user chat room: join it and post there" },
    Field { name: "nick", kind: FieldKind::Text, required: false, default: "\"Sentry\"", help: "the name shown in the room" },
    Field { name: "server", kind: FieldKind::Text, required: false, default: "", help: "host:port to connect to; unset, the server the JID's domain names (DNS SRV, else port 5222)" },
    Field { name: "tls", kind: FieldKind::Choice(&["starttls", "none"]), required: false, default: "\"starttls\"", help: "\"starttls\" (required) or \"none\" (a server on a trusted network only)" },
    Field { name: "ca_file", kind: FieldKind::Text, required: false, default: "", help: "a PEM file with a certificate authority to trust besides the usual ones (for a private server)" },
    crate::http::TIMEOUT_FIELD,
];

/// The id of the ping that confirms a message.
const PING_ID: &str = "sentry-confirm";
const BIND_ID: &str = "sentry-bind";

/// Sends XMPP messages.
pub struct Xmpp;

impl Plugin for Xmpp {
    fn name(&self) -> &'static str {
        "xmpp"
    }
    fn description(&self) -> &'static str {
        "sends the one-line summary with the link over XMPP (Jabber), to a person or a room"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn validate(&self, s: &Settings) -> Result<(), SettingError> {
        let jid = s.text("jid").unwrap_or_default();
        if BareJid::from_str(jid).map_or(true, |j| j.node().is_none()) {
            return Err(SettingError::new("jid", format!("`jid` = {jid:?} is not an account's address; write it like \"sentry@example.org\"")));
        }
        let to = s.text("to").unwrap_or_default();
        if BareJid::from_str(to).is_err() {
            return Err(SettingError::new("to", format!("`to` = {to:?} is not an XMPP address; write it like \"ops@example.org\"")));
        }
        if let Some(server) = s.text("server")
            && server.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0))
        {
            return Err(SettingError::new("server", format!("`server` = {server:?} must be host:port, like \"xmpp.example.org:5222\"")));
        }
        if let Some(ca) = s.text("ca_file") {
            let pem = std::fs::read(ca).map_err(|e| SettingError::new("ca_file", format!("can't read {ca}: {e}")))?;
            if certificates(&pem).map_or(true, |c| c.is_empty()) {
                return Err(SettingError::new("ca_file", format!("{ca} holds no PEM certificate")));
            }
        }
        Ok(())
    }
    fn rule_fired<'a>(&'a self, n: &'a Notification, s: &'a Settings) -> Delivery<'a> {
        Box::pin(async move {
            let jid = BareJid::from_str(s.text("jid").unwrap_or_default()).map_err(|e| DeliveryError::Permanent(format!("jid: {e}")))?;
            let to = BareJid::from_str(s.text("to").unwrap_or_default()).map_err(|e| DeliveryError::Permanent(format!("to: {e}")))?;
            let password = s.text("password").unwrap_or_default().to_string();
            let dns = match s.text("server").and_then(|v| v.rsplit_once(':')) {
                Some((host, port)) => DnsConfig::no_srv(host, port.parse().unwrap_or(5222)),
                None => DnsConfig::srv_default_client(jid.domain().as_str()),
            };
            let send = Send {
                jid: jid.clone(),
                password,
                to,
                room: s.flag("room").then(|| s.text("nick").unwrap_or("Sentry").to_string()),
                text: n.one_line(),
            };
            let timeout = Duration::from_secs(s.number("timeout_seconds").unwrap_or(10));
            let run = async {
                match s.text("tls").unwrap_or("starttls") {
                    "none" => send.over(TcpServerConnector::from(dns)).await,
                    _ => send.over(StartTls::new(dns, s.text("ca_file"))?).await,
                }
            };
            tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| DeliveryError::Retry(format!("XMPP as {jid}: no answer within {timeout:?}")))?
        })
    }
}

/// One message to send.
struct Send {
    jid: BareJid,
    password: String,
    to: BareJid,
    /// The nick to join the room `to` with, when it is a room.
    room: Option<String>,
    text: String,
}

impl Send {
    async fn over<C: ServerConnector>(&self, connector: C) -> Result<(), DeliveryError> {
        let who = &self.jid;
        let retry = |e: Error| DeliveryError::Retry(format!("XMPP as {who}: {e}"));
        let account: Jid = self.jid.clone().into();
        let (pending, binding) = connector.connect(&account, ns::JABBER_CLIENT, Timeouts::tight()).await.map_err(retry)?;
        let (features, stream) = pending.recv_features().await.map_err(|e| retry(e.into()))?;
        let node = self.jid.node().map(|n| n.as_str().to_string()).unwrap_or_default();
        let creds = Credentials::default().with_username(node).with_password(self.password.clone()).with_channel_binding(binding);
        let stream: XmppStream<C::Stream> = stream;
        let reset = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds).await.map_err(|e| match e {
            Error::Auth(e) => DeliveryError::Permanent(format!("XMPP: the server refused the login as {who}: {e}")),
            e => retry(e),
        })?;
        let header = StreamHeader { to: Some(Cow::Borrowed(self.jid.domain().as_str())), from: None, id: None };
        let pending = reset.send_header(header).await.map_err(|e| retry(e.into()))?;
        let (_, mut stream) = pending.recv_features().await.map_err(|e| retry(e.into()))?;
        let stream: &mut XmppStream<C::Stream> = &mut stream;

        send(stream, Iq::from_set(BIND_ID, BindQuery::new(None)).into()).await.map_err(retry)?;
        let bound = next(stream, who, |st| match st {
            Stanza::Iq(iq @ Iq::Result { .. }) if iq.id() == BIND_ID => Some(Ok(())),
            Stanza::Iq(iq @ Iq::Error { .. }) if iq.id() == BIND_ID => Some(Err(format!("binding a resource failed: {iq:?}"))),
            _ => None,
        });
        bound.await?.map_err(DeliveryError::Retry)?;

        let kind = if let Some(nick) = &self.room {
            let me = self.to.with_resource_str(nick).map_err(|e| DeliveryError::Permanent(format!("nick {nick:?}: {e}")))?;
            let join = Presence::new(PresenceType::None).with_to(me.clone()).with_payloads(vec![Muc::new().into()]);
            send(stream, join.into()).await.map_err(retry)?;
            let joined = next(stream, who, |st| match st {
                Stanza::Presence(p) if p.from.as_ref() == Some(&Jid::from(me.clone())) => Some(if p.type_ == PresenceType::Error {
                    Err(format!("joining {} was refused: {}", self.to, describe(&p.payloads)))
                } else {
                    Ok(())
                }),
                _ => None,
            });
            joined.await?.map_err(DeliveryError::Permanent)?;
            MessageType::Groupchat
        } else {
            MessageType::Chat
        };
        let message = Message::new_with_type(kind, Some(Jid::from(self.to.clone()))).with_body(Lang::default(), self.text.clone());
        send(stream, message.into()).await.map_err(retry)?;
        let ping = Iq::from_get(PING_ID, Ping).with_to(Jid::from(self.jid.domain().to_owned()));
        send(stream, ping.into()).await.map_err(retry)?;
        let to = Jid::from(self.to.clone());
        let confirmed = next(stream, who, |st| match st {
            Stanza::Message(m) if m.type_ == MessageType::Error && m.from.as_ref().is_some_and(|f| f.to_bare() == to.to_bare()) => {
                Some(Err(format!("the message to {} was refused: {}", self.to, describe(&m.payloads))))
            }
            Stanza::Iq(iq) if iq.id() == PING_ID => Some(Ok(())),
            _ => None,
        });
        confirmed.await?.map_err(DeliveryError::Permanent)?;
        let _ = tokio::time::timeout(Duration::from_secs(2), SinkExt::<&XmppStreamElement>::close(stream)).await;
        Ok(())
    }
}

async fn send<S: tokio_xmpp::connect::AsyncReadAndWrite>(stream: &mut XmppStream<S>, stanza: Stanza) -> Result<(), Error> {
    stream.send(&XmppStreamElement::Stanza(stanza)).await.map_err(Error::from)
}

/// Reads stanzas until `pick` decides on one; a closed or broken stream is retried.
async fn next<S: tokio_xmpp::connect::AsyncReadAndWrite, T>(
    stream: &mut XmppStream<S>,
    who: &BareJid,
    mut pick: impl FnMut(&Stanza) -> Option<T>,
) -> Result<T, DeliveryError> {
    loop {
        match stream.next().await.map(|r| r.map(|el| el.into_read_error())) {
            Some(Ok(Ok(XmppStreamElement::Stanza(st)))) => {
                if let Some(decided) = pick(&st) {
                    return Ok(decided);
                }
            }
            Some(Ok(Ok(XmppStreamElement::StreamError(e)))) => {
                return Err(DeliveryError::Retry(format!("XMPP as {who}: the server closed the stream: {e}")));
            }
            Some(Ok(Ok(_))) | Some(Ok(Err(tokio_xmpp::xmlstream::ReadError::SoftTimeout))) | Some(Err(tokio_xmpp::xmlstream::ReadError::SoftTimeout)) => {}
            Some(Ok(Err(e))) | Some(Err(e)) => return Err(DeliveryError::Retry(format!("XMPP as {who}: {e}"))),
            None => return Err(DeliveryError::Retry(format!("XMPP as {who}: the server closed the connection"))),
        }
    }
}

/// The error condition in a stanza's payloads, in a few words.
fn describe(payloads: &[tokio_xmpp::minidom::Element]) -> String {
    payloads
        .iter()
        .find(|p| p.name() == "error")
        .and_then(|e| e.children().next().map(|c| c.name().to_string()))
        .unwrap_or_else(|| "no reason given".into())
}

/// STARTTLS (RFC 6120, 5.4): a plain stream, `<starttls/>`, `<proceed/>`, then TLS on the
/// same connection, checked against the usual roots and, when given, a private CA.
#[derive(Clone)]
struct StartTls {
    dns: DnsConfig,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for StartTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartTls").field("dns", &self.dns).finish_non_exhaustive()
    }
}

impl StartTls {
    fn new(dns: DnsConfig, ca_file: Option<&str>) -> Result<StartTls, DeliveryError> {
        crate::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| DeliveryError::Retry(format!("reading {ca}: {e}")))?;
            let certs = certificates(&pem).map_err(|e| DeliveryError::Permanent(format!("{ca} is not a PEM certificate: {e}")))?;
            for cert in certs {
                roots.add(cert).map_err(|e| DeliveryError::Permanent(format!("{ca}: {e}")))?;
            }
        }
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Ok(StartTls { dns, tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)) })
    }
}

/// The certificates of a PEM file.
fn certificates(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    rustls::pki_types::pem::PemObject::pem_slice_iter(pem).collect()
}

impl ServerConnector for StartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(&self, jid: &Jid, ns: &'static str, timeouts: Timeouts) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader { to: Some(Cow::Borrowed(domain)), from: None, id: None };
        let tcp = BufStream::new(self.dns.resolve().await?);
        let (features, mut stream): (_, XmppStream<_>) = initiate_stream(tcp, ns, header(), timeouts).await?.recv_features().await?;
        if !features.can_starttls() {
            return Err(Error::Protocol(tokio_xmpp::error::ProtocolError::NoTls));
        }
        stream.send(&XmppStreamElement::Starttls(starttls::Nonza::Request(starttls::Request))).await?;
        loop {
            match stream.next().await.map(|r| r.map(|el| el.into_read_error())) {
                Some(Ok(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_))))) => break,
                Some(Ok(Ok(_))) | Some(Ok(Err(ReadError::SoftTimeout))) | Some(Err(ReadError::SoftTimeout)) => {}
                Some(Ok(Err(e))) | Some(Err(e)) => return Err(std::io::Error::other(e.to_string()).into()),
                None => return Err(Error::Disconnected),
            }
        }
        let name = rustls::pki_types::ServerName::try_from(domain.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = self.tls.connect(name, stream.into_inner().into_inner()).await?;
        let pending = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((pending, ChannelBinding::None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::check_settings;

    fn check(v: serde_json::Value) -> Result<Settings, SettingError> {
        check_settings(&Xmpp, v.as_object().unwrap())
    }

    #[test]
    fn settings_are_checked() {
        let ok = check(serde_json::json!({"jid": "sentry@example.org", "password": "p", "to": "ops@conference.example.org", "room": true})).unwrap();
        assert_eq!((ok.text("tls"), ok.text("nick")), (Some("starttls"), Some("Sentry")));
        let bad = |v: serde_json::Value| check(v).unwrap_err().key;
        assert_eq!(bad(serde_json::json!({"jid": "example.org", "password": "p", "to": "a@b"})).as_deref(), Some("jid"));
        assert_eq!(bad(serde_json::json!({"jid": "s@example.org", "password": "p", "to": "@b"})).as_deref(), Some("to"));
        assert_eq!(bad(serde_json::json!({"jid": "s@example.org", "password": "p", "to": "a@b", "server": "host"})).as_deref(), Some("server"));
        assert_eq!(bad(serde_json::json!({"jid": "s@example.org", "password": "p", "to": "a@b", "tls": "ssl"})).as_deref(), Some("tls"));
        assert_eq!(bad(serde_json::json!({"jid": "s@example.org", "password": "p", "to": "a@b", "ca_file": "/nonexistent.pem"})).as_deref(), Some("ca_file"));
        let not_pem = std::env::temp_dir().join(format!("sentry-xmpp-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let key = bad(serde_json::json!({"jid": "s@example.org", "password": "p", "to": "a@b", "ca_file": not_pem.to_str().unwrap()}));
        std::fs::remove_file(&not_pem).unwrap();
        assert_eq!(key.as_deref(), Some("ca_file"));
    }
}
