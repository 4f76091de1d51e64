"""Open relay, from the outside: more address forms than test_smtp_relay.py's TRICKS (the
tricks aimed at our own IP literal, domain-less forms, our host name, other spellings of
loopback), and nmap's smtp-open-relay script (Debian's nmap, installed by scripts/deps.sh),
a relay checker this project did not write.

Every test runs from a client outside relay-network (harness.Server has no relay-network
unless told; nmap connects from 127.0.0.1): nothing is accepted for another domain, nothing
stays queued, and nothing is delivered to anybody but the local recipients asked for. A positive
control (the same nmap run from inside relay-network reports an open relay) shows that the
nmap check can fail.
"""
import os
import re
import shutil
import subprocess
import unittest

from harness import DEFAULT_USERS, DEMO, Server, ServerTest, SmtpAssertions, message

OUTSIDER = "127.0.0.2"
REMOTE = "elsewhere.test"

# Written inside RCPT TO:<...>; each must be refused (4xx/5xx), whatever the code.
MORE_TRICKS = [
    f"user%{REMOTE}@[127.0.0.1]",
    f"{REMOTE}!user@[127.0.0.1]",
    f'"user@{REMOTE}"@[127.0.0.1]',
    f"@[127.0.0.1]:user@{REMOTE}",
    f"user@{REMOTE}@[127.0.0.1]",
    f'"user@{REMOTE}"',
    f'"user%{REMOTE}"',
    f"{REMOTE}!user",
    f"user%{REMOTE}",
    f"USER%{REMOTE.upper()}@EXAMPLE.TEST",
    f"user%{REMOTE}@example.test.",
    f"user%{REMOTE}.@example.test",
    f"{REMOTE}!demo@Example.Test",
    f"demo%{REMOTE}@example.test",
    f"@example.test:demo@{REMOTE}",
    f"@mx.example.test:user@{REMOTE}",
    "user@mx.example.test",  # our host name is not a local domain
    "user@localhost",
    "user@[127.0.0.2]",
    "user@[127.1]",
    "user@[0177.0.0.1]",
    "user@[2130706433]",
    "user@[IPv6:0:0:0:0:0:0:0:1]",
    "user@[IPv6:::ffff:127.0.0.1]",
    f"user@{REMOTE}..",
    f"user@.{REMOTE}",
    f"user@{REMOTE.upper()}.",
    f"user@{REMOTE} ",
    f"user@{REMOTE}\tx",
    f"postmaster@{REMOTE}",
    f"user@example.test@{REMOTE}",
    f'"user"@{REMOTE}',
    f"user+tag@{REMOTE}",
]


class AddressForms(SmtpAssertions, ServerTest):
    # A relay network that the outsider is not in.
    server_args = {"relay_networks": ("127.0.0.1/32",)}

    def assert_nothing_relayed(self):
        srv = self.server
        srv.wait_queue_empty()
        self.assertEqual(srv.incoming_files(), [])
        self.assertNotIn(" result=accepted relay=<", srv.log())
        root = os.path.join(srv.dir, "mail")
        domains = sorted(os.listdir(root)) if os.path.isdir(root) else []
        self.assertTrue(set(domains) <= {"example.test", "other.test"}, domains)

    def test_more_tricks_are_refused_from_outside(self):
        sent = 0
        for rcpt in MORE_TRICKS:
            with self.subTest(rcpt=rcpt), self.session(OUTSIDER) as r:
                self.reply(r, 250, "2.1.0", "MAIL FROM:<trick@example.org>\r\n")
                r.send(f"RCPT TO:<{rcpt}>\r\n")
                code, lines = r.reply()
                self.assertGreaterEqual(code, 400, f"{rcpt!r} accepted: {lines}")
                # With a good local recipient beside it, the message reaches only that one.
                self.rcpt(r, DEMO)
                self.reply(r, 354, None, "DATA\r\n")
                self.reply(r, 250, "2.0.0", message(subject=f"form {sent}") + ".\r\n")
                sent += 1
        self.server.wait_mail(DEMO, sent)
        self.assert_nothing_relayed()
        self.assertEqual(len(self.server.mailbox(DEMO)), sent)
        for user in DEFAULT_USERS:
            if user != DEMO:
                self.assertEqual(self.server.mailbox(user), [], user)
        for got in self.server.mailbox(DEMO):
            self.assertNotIn(REMOTE.encode(), got.split(b"\n\n", 1)[0].lower())

    def test_own_ip_literal_as_sender_does_not_help(self):
        """MAIL FROM with our own address or domain does not make a client a relay client."""
        for sender in ("antispam@[127.0.0.1]", "postmaster@example.test", "demo@example.test",
                       "", "x@mx.example.test"):
            with self.subTest(sender=sender), self.session(OUTSIDER) as r:
                self.reply(r, 250, "2.1.0", f"MAIL FROM:<{sender}>\r\n")
                self.rcpt(r, f"relaytest@{REMOTE}", 554, "5.7.1")
        self.assert_nothing_relayed()


NMAP = shutil.which("nmap") or "/usr/bin/nmap"


def nmap_relay_check(srv):
    """nmap's smtp-open-relay against srv (its 16 address forms, our own IP as the literal,
    the host name from our greeting, the remote domain elsewhere.test); the script's output."""
    # '+' runs the script although the port is not one nmap calls SMTP (25, 465, 587).
    p = subprocess.run([NMAP, "-n", "-Pn", "-sT", "-p", str(srv.port),
                        "--script", "+smtp-open-relay", "-d",
                        "--script-args", f"smtp-open-relay.domain={REMOTE},"
                                         f"smtp.domain=nmap.example.org", srv.host],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"nmap exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    m = re.search(r"\|_? ?smtp-open-relay: (.*)", p.stdout)
    if not m:
        raise AssertionError(f"no smtp-open-relay result in nmap's output:\n{p.stdout}")
    return m.group(1).strip(), p.stdout


class Nmap(unittest.TestCase):
    """Not skippable: scripts/deps.sh installs nmap for `make test`; a missing nmap fails."""

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            srv.cleanup()

    def server(self, **kw):
        srv = Server(**kw).start()
        self.servers.append(srv)
        return srv

    def test_nmap_smtp_open_relay_finds_no_relay(self):
        self.assertTrue(os.access(NMAP, os.X_OK), "nmap is missing: run scripts/deps.sh test")
        # Our greeting names a local domain, so nmap's "%"-hack, bang-path, source-route and
        # double-@ forms aim at a domain we deliver for.
        srv = self.server(hostname="example.test", relay_networks=("127.0.0.2/32",))
        result, out = nmap_relay_check(srv)
        self.assertEqual(result, "Server doesn't seem to be an open relay, all tests failed",
                         out)
        # The script really talked to us: its 16 transactions, each refused.
        self.assertEqual(len(re.findall(r"event=rcpt [^\n]*result=rejected", srv.log())), 16,
                         srv.log()[-3000:])
        srv.wait_queue_empty()
        self.assertEqual(srv.incoming_files(), [])
        self.assertNotIn(" result=accepted relay=<", srv.log())

    def test_nmap_sees_a_relay_client_as_an_open_relay(self):
        """The positive control: from inside relay-network, relaying is allowed and nmap says
        so; the check above is not blind."""
        srv = self.server(hostname="example.test", relay_networks=("127.0.0.1/32",))
        result, out = nmap_relay_check(srv)
        self.assertRegex(result, r"^Server is an open relay \(\d+/16 tests\)", out)


if __name__ == "__main__":
    unittest.main()
