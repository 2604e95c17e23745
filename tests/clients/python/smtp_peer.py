"""A real SMTP server (aiosmtpd) for the email notification tests (crates/server/tests/it/notify.rs).

    smtp_peer.py PORT DIR [--starttls USER PASSWORD]

Listens on 127.0.0.1:PORT. Every message received is parsed with Python's `email` package and
written to DIR as N.eml (as received) and N.json: subject, from, to, message_id, rcpt_tos, text
(the plain-text part), html (the HTML part). With --starttls, a throwaway certificate authority
(trustme) signs a certificate for 127.0.0.1, its certificate goes to DIR/ca.pem, STARTTLS is
required and so is AUTH LOGIN/PLAIN as USER with PASSWORD. Prints READY once listening.
"""
import email
import email.policy
import itertools
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, out):
        self.out = out
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.numbers)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        facts = dict(
            subject=str(msg["subject"]),
            sender=str(msg["from"]),
            to=str(msg["to"]),
            message_id=str(msg["message-id"]),
            rcpt_tos=list(envelope.rcpt_tos),
            text=text.get_content() if text is not None else None,
            html=html.get_content() if html is not None else None,
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
        )
        with open(os.path.join(self.out, "%d.eml" % n), "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.out, "%d.json.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(facts, f)
        os.rename(tmp, os.path.join(self.out, "%d.json" % n))
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    kwargs = {}
    if "--starttls" in sys.argv:
        import trustme

        i = sys.argv.index("--starttls")
        user, password = sys.argv[i + 1], sys.argv[i + 2]
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        ca.cert_pem.write_to_path(os.path.join(out, "ca.pem"))

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kwargs = dict(tls_context=context, require_starttls=True, auth_require_tls=True, authenticator=authenticator)
    controller = Controller(Handler(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
