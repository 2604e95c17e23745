"""A GNTP (network Growl) receiver for the Growl notification tests (crates/server/tests/it/notify.rs),
parsing with an independent implementation: the `gntp` package from PyPI (in .venv-peers).

    gntp_peer.py PORT DIR PASSWORD

Listens on 127.0.0.1:PORT. Each message is parsed with gntp.core.parse_gntp, which checks the
key hash against PASSWORD, and written to DIR as N.json: type (REGISTER or NOTIFY), headers,
and for REGISTER the notification types. It answers -OK, or -ERROR 400 for a wrong password,
401 for a NOTIFY from an application that did not REGISTER, 402 for an unregistered
notification type and 300 for anything it can't parse (written as N.json too, with `error`).
Prints READY once listening.
"""
import itertools
import json
import os
import socket
import socketserver
import sys
import threading

import gntp.core
import gntp.errors

# gntp 1.0.3 decodes the salt to a str on Python 3 and then fails to add it to the password's
# bytes ("can't concat str to bytes"): its key-hash check only works with this one-line fix.
gntp.core._GNTPBase._decode_hex = lambda self, value: bytes.fromhex(value)

REGISTERED = {}  # application name -> set of notification names
LOCK = threading.Lock()
NUMBERS = itertools.count(1)


def complete(data):
    """Whether `data` holds a whole message: blocks end with a blank line; a REGISTER has
    one block per notification type after its headers."""
    if not data.endswith(b"\r\n\r\n"):
        return False
    blocks = [b for b in data.split(b"\r\n\r\n") if b.strip()]
    if data.split(b" ", 2)[1:2] == [b"REGISTER"]:
        for line in blocks[0].split(b"\r\n"):
            if line.lower().startswith(b"notifications-count:"):
                return len(blocks) >= 1 + int(line.split(b":", 1)[1])
        return True
    return True


def answer(code=None, description=None, action=""):
    if code is None:
        return ("GNTP/1.0 -OK NONE\r\nResponse-Action: %s\r\n\r\n" % action).encode()
    return ("GNTP/1.0 -ERROR NONE\r\nError-Code: %d\r\nError-Description: %s\r\n\r\n" % (code, description)).encode()


def record(out, facts):
    n = next(NUMBERS)
    tmp = os.path.join(out, "%d.json.tmp" % n)
    with open(tmp, "w") as f:
        json.dump(facts, f)
    os.rename(tmp, os.path.join(out, "%d.json" % n))


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(10)
        data = b""
        try:
            while not complete(data):
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
        except socket.timeout:
            return
        out, password = self.server.out, self.server.password
        try:
            msg = gntp.core.parse_gntp(data, password)
            msg.validate()
        except gntp.errors.AuthError as e:
            record(out, {"error": "auth", "detail": str(e)})
            self.request.sendall(answer(400, "NOT_AUTHORIZED %s" % e))
            return
        except Exception as e:  # anything else the parser refuses
            record(out, {"error": "parse", "detail": repr(e), "raw": data.decode("utf-8", "replace")})
            self.request.sendall(answer(300, "INVALID_REQUEST %s" % e))
            return
        kind = msg.info["messagetype"]
        facts = {"type": kind, "headers": dict(msg.headers), "hashed": msg.info.get("keyHashAlgorithmID")}
        app = msg.headers.get("Application-Name")
        with LOCK:
            if kind == "REGISTER":
                facts["notifications"] = msg.notifications
                REGISTERED[app] = {n["Notification-Name"] for n in msg.notifications}
            elif kind == "NOTIFY" and app not in REGISTERED:
                facts["error"] = "unknown application"
                record(out, facts)
                self.request.sendall(answer(401, "UNKNOWN_APPLICATION"))
                return
            elif kind == "NOTIFY" and msg.headers.get("Notification-Name") not in REGISTERED[app]:
                facts["error"] = "unknown notification"
                record(out, facts)
                self.request.sendall(answer(402, "UNKNOWN_NOTIFICATION"))
                return
        record(out, facts)
        self.request.sendall(answer(action=kind))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    port, out, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    server = Server(("127.0.0.1", port), Handler)
    server.out, server.password = out, password
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
