#!/usr/bin/python3
"""A receiving SMTP server for the outbound tests: Python's aiosmtpd (Debian python3-aiosmtpd),
a real implementation that carteiro's client did not come from.

Run as a separate process (so a test can kill it, or start it late):

  smtp_peer.py --listen 127.0.0.2:2525 --store DIR [--name mx1.example.net]
               [--tls-cert FILE --tls-key FILE] [--implicit-tls] [--require-tls]
               [--auth USER:PASS] [--rcpt ADDR=CODE] [--mail-fail N]

Each accepted message is written to DIR as N.eml (the bytes received) and N.json (envelope:
mail_from, rcpt_tos, mail_options, rcpt_options, tls, auth, peer name). DIR/ready appears once
the server listens. --rcpt ADDR=550 refuses that recipient with that code; --mail-fail N answers
the first N transactions with 451 at MAIL FROM.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.args = args
        self.rcpt_codes = {}
        for spec in args.rcpt or []:
            addr, code = spec.rsplit("=", 1)
            self.rcpt_codes[addr.lower()] = int(code)
        self.mail_failures_left = args.mail_fail
        self.count = 0
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_failures_left > 0:
            self.mail_failures_left -= 1
            return "451 4.3.0 Try again later (test peer)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.rcpt_codes.get(address.lower())
        if code:
            status = f"{code // 100}.1.1"
            return f"{code} {status} <{address}>: Recipient refused by the test peer"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.args.store, str(n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "tls": session.ssl is not None,
            "auth": session.authenticated,
            "helo": session.host_name,
            "peer": self.args.name,
        }
        with open(base + ".json", "w") as f:
            json.dump(info, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Message accepted for delivery (test peer)"


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)
    return authenticator


class PeerController(Controller):
    def __init__(self, handler, args, **kwargs):
        self.args = args
        super().__init__(handler, **kwargs)

    def factory(self):
        a = self.args
        kw = dict(hostname=a.name, enable_SMTPUTF8=True, data_size_limit=50 * 1024 * 1024,
                  timeout=60)
        if a.tls_cert and not a.implicit_tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(a.tls_cert, a.tls_key)
            kw["tls_context"] = ctx
            kw["require_starttls"] = a.require_tls
        if a.auth:
            user, password = a.auth.split(":", 1)
            kw["authenticator"] = make_authenticator(user, password)
            kw["auth_required"] = True
            # Over implicit TLS aiosmtpd cannot tell: the session is TLS from the start.
            kw["auth_require_tls"] = not a.implicit_tls
        return SMTP(self.handler, **kw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--name", default="peer.test")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--rcpt", action="append")
    p.add_argument("--mail-fail", type=int, default=0)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.store, exist_ok=True)
    kw = {}
    if args.implicit_tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        kw["ssl_context"] = ctx
    ctl = PeerController(Handler(args), args, hostname=host, port=int(port), **kw)
    ctl.start()
    with open(os.path.join(args.store, "ready"), "w") as f:
        f.write(str(os.getpid()))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        ctl.stop()


if __name__ == "__main__":
    sys.exit(main())
