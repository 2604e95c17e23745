//! A real XMPP server for the XMPP notification tests: Debian's Prosody on a free loopback
//! port, with a throwaway config and data directory (a multi-user chat component at
//! `conference.localhost`, plain connections allowed), accounts made with `prosodyctl`, and
//! [`XmppReader`], a second client written here from the RFC (stream, SASL PLAIN, bind, join a
//! room) that reads what arrives.

use std::{
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;

use super::free_port;

/// Prosody, stopped on drop.
pub struct Prosody {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Prosody {
    /// A configured server that is not started yet (accounts can be made already).
    pub fn configured() -> Prosody {
        Prosody::configure(false)
    }

    /// Like [`Prosody::configured`], offering STARTTLS with a certificate for `localhost` from a
    /// throwaway certificate authority (trustme, in the SDK venv), whose certificate is
    /// [`Prosody::ca`].
    pub fn configured_with_tls() -> Prosody {
        Prosody::configure(true)
    }

    /// The PEM certificate of the authority that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/ca.pem")
    }

    fn configure(tls: bool) -> Prosody {
        let dir = tempfile::Builder::new().prefix("sentry-prosody-").tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display();
        fs::create_dir_all(dir.path().join("data")).expect("data dir");
        fs::create_dir_all(dir.path().join("certs")).expect("certs dir");
        let (tls_module, ssl) = if tls {
            let script = "import sys, trustme\nca = trustme.CA()\ncert = ca.issue_cert('localhost')\nd = sys.argv[1]\n\
                          ca.cert_pem.write_to_path(d + '/ca.pem')\ncert.private_key_pem.write_to_path(d + '/localhost.key')\n\
                          cert.cert_chain_pems[0].write_to_path(d + '/localhost.crt')\n";
            let out = super::clean_command(super::python()).args(["-c", script]).arg(dir.path().join("certs")).output().expect("running trustme");
            assert!(out.status.success(), "making certificates: {}", String::from_utf8_lossy(&out.stderr));
            (" \"tls\";", format!("  ssl = {{ key = \"{d}/certs/localhost.key\"; certificate = \"{d}/certs/localhost.crt\" }}\n"))
        } else {
            ("", String::new())
        };
        fs::write(
            dir.path().join("prosody.cfg.lua"),
            format!(
                "daemonize = false\nrun_as_root = true\ndata_path = \"{d}/data\"\ncertificates = \"{d}/certs\"\n\
                 interfaces = {{ \"127.0.0.1\" }}\nc2s_ports = {{ {port} }}\ns2s_ports = {{ }}\n\
                 modules_enabled = {{ \"roster\"; \"saslauth\"; \"disco\"; \"ping\";{tls_module} }}\nmodules_disabled = {{ \"s2s\" }}\n\
                 authentication = \"internal_plain\"\nstorage = \"internal\"\n\
                 c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n\
                 log = {{ debug = \"{d}/prosody.log\" }}\n\
                 VirtualHost \"localhost\"\n{ssl}\
                 Component \"conference.localhost\" \"muc\"\n  muc_room_locking = false\n  restrict_room_creation = false\n  muc_room_default_persistent = true\n"
            ),
        )
        .expect("prosody.cfg.lua");
        Prosody { dir, port, child: None }
    }

    pub fn start() -> Prosody {
        let mut p = Prosody::configured();
        p.launch();
        p
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Creates the account `user@localhost`.
    pub fn register(&self, user: &str, password: &str) {
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config())
            .args(["register", user, "localhost", password])
            .output()
            .expect("prosodyctl is not installed: run ./scripts/test.sh, which installs it");
        assert!(out.status.success(), "prosodyctl register {user}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "Prosody already running");
        let log_path = self.dir.path().join("prosody.out");
        let log = fs::File::create(&log_path).expect("prosody log");
        let mut child = Command::new("prosody")
            .arg("--config")
            .arg(self.config())
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("fd"))
            .stderr(log)
            .spawn()
            .expect("starting prosody");
        super::peers::wait_listening(self.port, "prosody", &mut child, &log_path);
        self.child = Some(child);
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        super::peers::stop(&mut self.child);
    }
}

/// A message an [`XmppReader`] got.
#[derive(Clone, Debug)]
pub struct XmppMessage {
    pub from: String,
    pub kind: String,
    pub body: String,
    /// Sent from the room's history (XEP-0203 delay), not live.
    pub delayed: bool,
}

/// A second XMPP client, logged in and online, collecting the messages it is sent.
pub struct XmppReader {
    stream: TcpStream,
    buf: String,
    pub seen: Vec<XmppMessage>,
}

impl XmppReader {
    /// Logs in as `user@localhost` with SASL PLAIN, binds a resource and says it is online.
    pub fn connect(port: u16, user: &str, password: &str) -> XmppReader {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to prosody");
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut r = XmppReader { stream, buf: String::new(), seen: Vec::new() };
        let header = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
        r.send(header);
        r.read_until("</stream:features>");
        let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        r.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"));
        let answer = r.read_until_any(&["<success", "<failure"]);
        assert!(answer.contains("<success"), "login as {user}: {answer}");
        r.send(header);
        r.read_until("</stream:features>");
        r.send("<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>reader</resource></bind></iq>");
        r.read_until("</iq>");
        r.send("<presence/>");
        r
    }

    fn send(&mut self, xml: &str) {
        self.stream.write_all(xml.as_bytes()).expect("writing to prosody");
    }

    /// Reads until `self.buf` holds one of `marks`; returns what was read up to its end and
    /// keeps the rest.
    fn read_until_any(&mut self, marks: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = marks.iter().filter_map(|m| self.buf.find(m).map(|i| i + m.len())).min() {
                // Up to the end of that element's closing `>`.
                let end = self.buf[end..].find('>').map_or(self.buf.len(), |i| end + i + 1);
                let mut head: String = self.buf.drain(..end).collect();
                let copy = head.clone();
                take_messages(&mut head, &mut self.seen);
                return copy;
            }
            assert!(Instant::now() < deadline, "no {marks:?} from prosody within 10 s; read: {}", self.buf);
            self.fill();
        }
    }

    fn read_until(&mut self, mark: &str) -> String {
        self.read_until_any(&[mark])
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("prosody closed the reader's connection; read: {}", self.buf),
            Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading from prosody: {e}"),
        }
    }

    /// Joins the room `room` (creating it) as `nick`, and waits for its own presence there.
    pub fn join(&mut self, room: &str, nick: &str) {
        self.send(&format!("<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        // The room's presence of ourselves carries status 110 (XEP-0045).
        self.read_until_any(&["code='110'", "code=\"110\""]);
    }

    /// Reads messages until one matches; panics after `timeout`.
    #[track_caller]
    pub fn wait_message(&mut self, timeout: Duration, matching: impl Fn(&XmppMessage) -> bool) -> XmppMessage {
        let deadline = Instant::now() + timeout;
        loop {
            self.collect();
            if let Some(m) = self.seen.iter().find(|m| matching(m)) {
                return m.clone();
            }
            assert!(Instant::now() < deadline, "no matching XMPP message within {timeout:?}; got {:#?}", self.seen);
            self.fill();
        }
    }

    /// Reads for `time`, then returns every message seen.
    pub fn messages_after(&mut self, time: Duration) -> Vec<XmppMessage> {
        let until = Instant::now() + time;
        while Instant::now() < until {
            self.fill();
            self.collect();
        }
        self.seen.clone()
    }

    /// Moves whole `<message>` elements from the buffer to `seen`.
    fn collect(&mut self) {
        take_messages(&mut self.buf, &mut self.seen);
    }
}

/// Moves the whole `<message>` elements of `buf` that have a body to `seen`.
fn take_messages(buf: &mut String, seen: &mut Vec<XmppMessage>) {
    while let Some(start) = buf.find("<message") {
        let Some(end) = buf[start..].find("</message>").map(|i| start + i + "</message>".len()) else { return };
        let element: String = buf.drain(..end).skip(start).collect();
        let head = &element[..element.find('>').unwrap_or(element.len())];
        let attr = |name: &str| {
            [format!("{name}='"), format!("{name}=\"")].iter().find_map(|p| {
                let at = head.find(p.as_str())? + p.len();
                let quote = p.chars().last()?;
                head[at..].find(quote).map(|e| unescape(&head[at..at + e]))
            })
        };
        let body = element.find("<body>").and_then(|b| element[b + 6..].find("</body>").map(|e| unescape(&element[b + 6..b + 6 + e])));
        if let Some(body) = body {
            seen.push(XmppMessage {
                from: attr("from").unwrap_or_default(),
                kind: attr("type").unwrap_or_else(|| "normal".into()),
                body,
                delayed: element.contains("urn:xmpp:delay"),
            });
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}
