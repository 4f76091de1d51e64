"""POP3 (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034): mail sent with SMTP and
fetched with real POP3 clients (poplib, curl, fetchmail, mpop) and a byte-exact raw client;
sizes, UIDL stability, UPDATE-only deletion, the maildrop lock across workers, TLS and
plaintext policy, login failures, bad input, the idle timeout and the snapshot semantics."""
import base64
import os
import poplib
import re
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (DEMO, PASSWORD, Raw, Server, ServerTest, message, slow, test_pki,
                     tls_client_context, wait_for)

ALICE = "alice@example.test"


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def wire(stored):
    """What POP3 sends for a stored message (LF -> CRLF, a CR LF kept), unstuffed."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", stored)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


class Pop3Raw(Raw):
    """A byte-exact POP3 client on top of harness.Raw."""

    def status(self, data=None):
        if data is not None:
            self.send(data)
        return self.line()

    def ok(self, data=None):
        line = self.status(data)
        if not line.startswith("+OK"):
            raise AssertionError(f"sent {data!r:.100}: expected +OK, got {line!r}")
        return line

    def err(self, data=None):
        line = self.status(data)
        if not line.startswith("-ERR"):
            raise AssertionError(f"sent {data!r:.100}: expected -ERR, got {line!r}")
        return line

    def multiline(self):
        """The raw bytes of a multi-line body up to (not including) the ".CRLF" line."""
        while True:
            i = self.buf.find(b"\r\n.\r\n")
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return body
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed in a multi-line response: {self.buf[-200:]!r}")
            self.buf += chunk


def unstuff(body):
    """Undo the dot-stuffing of a multi-line body (lines end with CRLF)."""
    return b"\r\n".join(line[1:] if line.startswith(b".") else line
                         for line in body.split(b"\r\n"))


class Pop3Test(ServerTest):
    server_args = {"tls": True, "pop3": True, "extra_config": "auth-failure-delay 0"}

    def raw(self, port=None, login=None, tls=False):
        r = Pop3Raw(port or self.server.pop3_port)
        if tls:
            r.starttls()
        r.ok()
        if login:
            r.ok(f"USER {login}\r\n")
            r.ok(f"PASS {PASSWORD}\r\n")
        return r

    def send(self, body="Hello.\r\n", to=DEMO, subject="pop3 test", count=1):
        before = len(self.server.mailbox(to))
        with self.server.smtp() as s:
            for i in range(count):
                s.sendmail("a@example.org", [to], message(subject=f"{subject} {i}", body=body,
                                                          to=to))
        return self.server.wait_mail(to, before + count)

    def stored(self, address=DEMO):
        """name -> bytes of the messages in cur/ and new/."""
        out = {}
        base = self.server.mailbox_dir(address)
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), "rb") as f:
                    out[name] = f.read()
        return out

    # --- the bytes ------------------------------------------------------------------
    def test_retr_sends_stored_bytes_with_crlf_and_dot_stuffing(self):
        bodies = [".starts with a dot\r\n..two dots\r\n.\r\nnot the end\r\n",
                  "no final newline", "plain\r\n\r\n\r\n"]
        for body in bodies:
            self.send(body)
        with self.raw(login=DEMO) as r:
            count, octets = map(int, r.ok("STAT\r\n").split()[1:3])
            self.assertEqual(count, 3)
            r.ok("LIST\r\n")
            sizes = [int(line.split()[1]) for line in r.multiline().decode().splitlines()]
            self.assertEqual(sum(sizes), octets)
            for i in range(3):
                line = r.ok(f"RETR {i + 1}\r\n")
                self.assertEqual(line, f"+OK {sizes[i]} octets")
                raw = r.multiline()
                self.assertNotIn(b"\r\r\n", raw)
                self.assertIsNone(re.search(rb"(?<!\r)\n", raw), raw)
                self.assertIsNone(re.search(rb"(?m)^\.(?!\.)", raw), raw)  # all stuffed
                got = unstuff(raw)
                self.assertEqual(len(got), sizes[i])
            # The dot-stuffed message is byte for byte what was stored, with CRLF.
            got = unstuff((r.ok("RETR 1\r\n"), r.multiline())[1])
            self.assertIn(b"\r\n..two dots\r\n.\r\nnot the end\r\n", got)
            r.ok("QUIT\r\n")
        with self.server.pop3_client() as p:
            p.user(DEMO)
            p.pass_(PASSWORD)
            for i in range(3):
                resp, lines, octets = p.retr(i + 1)
                self.assertEqual(octets, sizes[i])
            p.quit()

    def test_planted_message_without_sizes_or_final_newline(self):
        # Another tool's file: no ,W= in the name, a CR LF inside, no final newline.
        self.send()  # the server makes the Maildir
        d = os.path.join(self.server.mailbox_dir(DEMO), "new")
        content = b"Subject: planted\n\nline one\r\nline two\n.dot\nlast"
        with open(os.path.join(d, "1000000000.P1.host"), "wb") as f:
            f.write(content)
        os.chmod(os.path.join(d, "1000000000.P1.host"), 0o666)
        with self.raw(login=DEMO) as r:
            size = int(r.ok("LIST 1\r\n").split()[2])
            r.ok("RETR 1\r\n")
            got = unstuff(r.multiline())
            self.assertEqual(got, wire(content))
            self.assertEqual(size, len(got))
            self.assertEqual(r.ok("UIDL 1\r\n"), "+OK 1 1000000000.P1.host")

    def test_large_message_streams_intact(self):
        body = "".join(f"line {i:07d} " + "x" * 90 + "\r\n" for i in range(30000))  # ~3 MB
        self.send(body)
        stored = list(self.stored().values())[0]
        with self.raw(login=DEMO) as r:
            size = int(r.ok("LIST 1\r\n").split()[2])
            r.ok("RETR 1\r\n")
            got = unstuff(r.multiline())
        self.assertEqual(got, wire(stored))
        self.assertEqual(size, len(got))

    def test_top(self):
        self.send("body 1\r\nbody 2\r\n.body 3\r\nbody 4\r\n")
        with self.server.pop3_client() as p:
            p.user(DEMO)
            p.pass_(PASSWORD)
            _, lines, _ = p.top(1, 0)
            self.assertEqual(lines[-1], b"")
            self.assertIn(b"Subject: pop3 test 0", lines)
            self.assertNotIn(b"body 1", lines)
            _, lines, _ = p.top(1, 3)
            self.assertEqual(lines[-3:], [b"body 1", b"body 2", b".body 3"])
            _, lines, _ = p.top(1, 100)
            self.assertEqual(lines[-1], b"body 4")
            p.quit()
        # TOP does not mark the message seen; RETR does (at QUIT).
        self.assertTrue(all(n.endswith(":2,") for n in self.stored()))

    # --- the maildrop ---------------------------------------------------------------
    def test_messages_move_new_to_cur_and_get_seen_flag(self):
        self.send(count=2)
        base = self.server.mailbox_dir(DEMO)
        self.assertEqual(len(os.listdir(os.path.join(base, "new"))), 2)
        with self.server.pop3_client() as p:
            p.user(DEMO)
            p.pass_(PASSWORD)
            self.assertEqual(os.listdir(os.path.join(base, "new")), [])
            cur = sorted(os.listdir(os.path.join(base, "cur")))
            self.assertEqual(len(cur), 2)
            self.assertTrue(all(n.endswith(":2,") for n in cur), cur)
            p.retr(2)
            p.quit()
        cur = sorted(os.listdir(os.path.join(base, "cur")))
        self.assertEqual(sum(n.endswith(":2,S") for n in cur), 1, cur)
        self.assertEqual(sum(n.endswith(":2,") for n in cur), 1, cur)

    def test_uidl_stable_across_restart(self):
        self.send(count=3)
        with self.server.pop3_client() as p:
            p.user(DEMO)
            p.pass_(PASSWORD)
            first = p.uidl()[1]
            p.retr(1)
            p.quit()
        self.server.restart()
        with self.server.pop3_client() as p:
            p.user(DEMO)
            p.pass_(PASSWORD)
            self.assertEqual(p.uidl()[1], first)
            self.assertEqual(p.uidl(2).split()[1:], first[1].split())
            p.quit()
        uidls = [line.split()[1] for line in first]
        self.assertEqual(len(set(uidls)), 3)
        for u in uidls:
            self.assertTrue(1 <= len(u) <= 70 and all(0x21 <= c <= 0x7e for c in u), u)

    def test_dele_quit_removes_and_disconnect_keeps(self):
        self.send(count=3)
        with self.raw(login=DEMO) as r:
            r.ok("DELE 1\r\n")
            self.assertEqual(r.ok("STAT\r\n").split()[1], "2")
            r.err("RETR 1\r\n")
            r.err("DELE 1\r\n")
            r.ok("LIST\r\n")
            self.assertEqual([line.split()[0] for line in r.multiline().decode().splitlines()],
                             ["2", "3"])
        # Dropped without QUIT: nothing deleted.
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=eof user=demo")
        self.assertEqual(len(self.stored()), 3)
        with self.raw(login=DEMO) as r:
            r.ok("DELE 2\r\n")
            r.ok("DELE 3\r\n")
            self.assertEqual(r.ok("QUIT\r\n"), "+OK Logging out, 2 messages deleted")
            self.assertTrue(r.closed())
        self.assertEqual(len(self.stored()), 1)
        self.server.wait_log(r"event=logout user=demo@example\.test retrieved=0 deleted=2 kept=1")

    def test_rset_undoes_dele(self):
        self.send(count=2)
        with self.raw(login=DEMO) as r:
            r.ok("DELE 1\r\n")
            r.ok("DELE 2\r\n")
            self.assertEqual(r.ok("STAT\r\n"), "+OK 0 0")
            r.ok("RSET\r\n")
            self.assertEqual(r.ok("STAT\r\n").split()[1], "2")
            r.ok("QUIT\r\n")
        self.assertEqual(len(self.stored()), 2)

    def test_new_mail_during_session_waits_for_next(self):
        self.send()
        with self.raw(login=DEMO) as r:
            self.assertEqual(r.ok("STAT\r\n").split()[1], "1")
            self.send(subject="later")
            self.assertEqual(r.ok("STAT\r\n").split()[1], "1")
            r.ok("DELE 1\r\n")
            r.ok("QUIT\r\n")
        stored = self.stored()
        self.assertEqual(len(stored), 1)
        self.assertIn(b"Subject: later", list(stored.values())[0])
        with self.raw(login=DEMO) as r:
            self.assertEqual(r.ok("STAT\r\n").split()[1], "1")
            r.ok("RETR 1\r\n")
            self.assertIn(b"Subject: later", r.multiline())

    def test_second_login_is_in_use_from_either_worker(self):
        self.send()
        with self.raw(login=DEMO) as first:
            pids = set()
            for _ in range(30):
                with self.raw() as r:
                    r.ok(f"USER {DEMO}\r\n")
                    self.assertEqual(r.err(f"PASS {PASSWORD}\r\n"),
                                     "-ERR [IN-USE] Mailbox is in use by another session")
                    r.ok("QUIT\r\n")
                pids = set(re.findall(r"carteiro/smtpd\[(\d+)\]: info: sid=\S+ "
                                      r"event=login_refused .*reason=in_use", self.server.log()))
                if len(pids) >= 2:
                    break
            self.assertEqual(len(pids), 2, "both workers should have refused a login")
            # The first session still works, and another user is not affected.
            self.assertEqual(first.ok("STAT\r\n").split()[1], "1")
            with self.raw(login=ALICE) as other:
                other.ok("QUIT\r\n")
            first.ok("QUIT\r\n")
        with self.raw(login=DEMO) as r:
            r.ok("QUIT\r\n")

    # --- TLS, AUTH and policy ----------------------------------------------------------
    def test_stls_then_login_and_pop3s(self):
        self.send()
        with self.server.pop3_client(stls=True) as p:
            self.assertNotIn("STLS", p.capa())
            p.user(DEMO)
            p.pass_(PASSWORD)
            self.assertEqual(p.stat()[0], 1)
            p.quit()
        with self.server.pop3s_client() as p:
            self.assertNotIn("STLS", p.capa())
            p.user(DEMO)
            p.pass_(PASSWORD)
            self.assertEqual(p.stat()[0], 1)
            p.quit()
        self.server.wait_log(r"event=login client=127\.0\.0\.1 user=demo@example\.test "
                             r"mechanism=USER tls=TLSv1\.[23]")
        with self.raw() as r:
            r.ok("STLS\r\n")
            r.starttls()
            r.err("STLS\r\n")

    def test_stls_discards_injected_commands(self):
        with self.raw() as r:
            r.send(f"STLS\r\nUSER {DEMO}\r\n")
            self.assertEqual(r.line(), "+OK Begin TLS negotiation now")
            r.starttls()
            r.err(f"PASS {PASSWORD}\r\n")  # the USER before the handshake was not believed
        self.server.wait_log(r"event=starttls_discarded bytes=\d+")

    def test_auth_plain_initial_and_continuation_and_login(self):
        plain = b64(f"\0{DEMO}\0{PASSWORD}")
        with self.raw() as r:
            self.assertIn("SASL PLAIN LOGIN", r.ok("CAPA\r\n") and r.multiline().decode())
            r.ok(f"AUTH PLAIN {plain}\r\n")
            r.ok("QUIT\r\n")
        with self.raw() as r:
            self.assertEqual(r.status("AUTH PLAIN\r\n"), "+ ")
            r.ok(plain + "\r\n")
            r.ok("STAT\r\n")
        with self.raw() as r:
            self.assertEqual(r.status("AUTH LOGIN\r\n"), "+ VXNlcm5hbWU6")
            self.assertEqual(r.status(b64(DEMO) + "\r\n"), "+ UGFzc3dvcmQ6")
            r.ok(b64(PASSWORD) + "\r\n")
        with self.raw() as r:
            r.status("AUTH PLAIN\r\n")
            r.err("*\r\n")
            r.err("AUTH CRAM-MD5\r\n")
            r.err("AUTH PLAIN not-base64!\r\n")
            r.ok("AUTH\r\n")
            self.assertEqual(r.multiline(), b"PLAIN\r\nLOGIN\r\n")
        with self.server.pop3_client() as p:
            p.user(DEMO)  # poplib has no AUTH helper: the raw steps above cover it
            p.pass_(PASSWORD)
            p.quit()
        self.assertNotIn(PASSWORD, self.server.log().replace("secret_", ""))
        self.server.wait_log(r"event=login client=127\.0\.0\.1 user=demo@example\.test "
                             r"mechanism=LOGIN")

    def test_bad_input(self):
        self.send()
        with self.raw() as r:
            self.assertEqual(r.err("FOO\r\n"), "-ERR Unknown command")
            self.assertEqual(r.err("STAT\r\n"), "-ERR Not logged in")
            self.assertEqual(r.err("RETR 1\r\n"), "-ERR Not logged in")
            self.assertEqual(r.err("PASS x\r\n"), "-ERR USER first")
            self.assertEqual(r.err("X" * 600 + "\r\n"), "-ERR Line too long")
            self.assertEqual(r.err("USER " + "a" * 5000 + "\r\n"), "-ERR Line too long")
            self.assertEqual(r.err("NOOP\n"), "-ERR Line must end with CRLF")
            self.assertEqual(r.err("USER\r\n"), "-ERR Wrong arguments (count or spacing)")
        with self.raw() as r:  # a new session: each counts its errors (pop3-max-errors)
            r.ok(f"USER {DEMO}\r\n")
            r.ok(f"PASS {PASSWORD}\r\n")
            self.assertEqual(r.err(f"USER {DEMO}\r\n"), "-ERR Not allowed after login")
            self.assertEqual(r.err("STLS\r\n"), "-ERR Not allowed after login")
            self.assertEqual(r.err("RETR abc\r\n"), "-ERR Argument is not a valid number")
            self.assertEqual(r.err("RETR -1\r\n"), "-ERR Argument is not a valid number")
            self.assertEqual(r.err("RETR 99999999999\r\n"), "-ERR Argument is not a valid number")
            self.assertEqual(r.err("RETR 2\r\n"), "-ERR No such message")
            self.assertEqual(r.err("RETR 0\r\n"), "-ERR No such message")
            self.assertEqual(r.err("LIST 1 2\r\n"), "-ERR Wrong arguments (count or spacing)")
            self.assertEqual(r.err("TOP 1\r\n"), "-ERR Wrong arguments (count or spacing)")
            self.assertEqual(r.err("RETR  1\r\n"), "-ERR Wrong arguments (count or spacing)")
            r.ok("DELE 1\r\n")
            self.assertEqual(r.err("RETR 1\r\n"), "-ERR Message is deleted")
            self.assertEqual(r.err("TOP 1 0\r\n"), "-ERR Message is deleted")
            r.ok("noop\r\n")  # keywords are case-insensitive
            r.ok("RSET\r\n")
        self.assertEqual(len(self.stored()), 1)

    def test_pipelined_commands(self):
        self.send(count=3)
        with self.raw() as r:
            r.send(f"USER {DEMO}\r\nPASS {PASSWORD}\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nSTAT\r\n"
                   "QUIT\r\n")
            r.ok()
            r.ok()
            for _ in range(3):
                r.ok()
                self.assertIn(b"Subject: pop3 test", r.multiline())
            r.ok()
            r.ok()
            self.assertTrue(r.closed())

    def test_too_many_errors_disconnects(self):
        with self.raw() as r:
            for _ in range(20):
                self.assertEqual(r.err("BAD\r\n"), "-ERR Unknown command")
            self.assertEqual(r.err(), "-ERR Too many errors; closing")
            self.assertTrue(r.closed())


class Pop3PolicyTest(ServerTest):
    server_args = {"tls": True, "pop3": True,
                   "extra_config": "pop3-plaintext-auth never\nauth-failure-delay 0"}

    def test_plaintext_refused_then_allowed_after_stls(self):
        with Pop3Raw(self.server.pop3_port) as r:
            r.ok()
            r.ok("CAPA\r\n")
            capa = r.multiline().decode()
            self.assertIn("STLS", capa)
            self.assertNotIn("USER", capa)
            self.assertNotIn("SASL", capa)
            self.assertTrue(r.err(f"USER {DEMO}\r\n").startswith("-ERR [AUTH] Plaintext"))
            self.assertTrue(r.err(f"AUTH PLAIN {b64(chr(0) + DEMO + chr(0) + PASSWORD)}\r\n")
                            .startswith("-ERR [AUTH] Plaintext"))
            r.ok("STLS\r\n")
            r.starttls()
            r.ok("CAPA\r\n")
            self.assertIn("USER", r.multiline().decode())
            r.ok(f"USER {DEMO}\r\n")
            r.ok(f"PASS {PASSWORD}\r\n")


class Pop3FailureTest(ServerTest):
    server_args = {"pop3": True,
                   "extra_config": "auth-failure-delay 1s\nauth-max-failures 3\n"
                                   "pop3-idle-timeout 2s"}

    def test_wrong_password_is_delayed_then_disconnected(self):
        with Pop3Raw(self.server.pop3_port) as r:
            r.ok()
            for n in range(2):
                r.ok(f"USER {DEMO}\r\n")
                t = time.monotonic()
                self.assertEqual(r.err("PASS wrong\r\n"), "-ERR [AUTH] Authentication failed")
                self.assertGreaterEqual(time.monotonic() - t, 0.9)
            r.ok(f"USER {DEMO}\r\n")
            self.assertTrue(r.err("PASS wrong\r\n").startswith("-ERR [AUTH] Too many"))
            self.assertTrue(r.closed())
        # Banned now, even with the right password.
        with Pop3Raw(self.server.pop3_port) as r:
            r.ok()
            r.ok(f"USER {DEMO}\r\n")
            self.assertTrue(r.err(f"PASS {PASSWORD}\r\n").startswith("-ERR [AUTH] Too many"))
            self.assertTrue(r.closed())
        log = self.server.log()
        self.assertEqual(len(re.findall(r"event=login_failed client=127\.0\.0\.1 "
                                        r"user=demo@example\.test mechanism=USER", log)), 3)
        self.assertNotIn("wrong", log)

    def test_idle_timeout(self):
        with Pop3Raw(self.server.pop3_port) as r:
            r.ok()
            r.ok(f"USER {DEMO}\r\n")
            r.ok(f"PASS {PASSWORD}\r\n")
            t = time.monotonic()
            self.assertEqual(r.line(), "-ERR Disconnected for inactivity")
            self.assertTrue(r.closed())
            self.assertGreaterEqual(time.monotonic() - t, 1.5)
        self.server.wait_log(r"event=timeout state=transaction")
        # The lock went with the session.
        with Pop3Raw(self.server.pop3_port) as r:
            r.ok()
            r.ok(f"USER {DEMO}\r\n")
            r.ok(f"PASS {PASSWORD}\r\n")


class Pop3ClientsTest(ServerTest):
    """Clients the project did not write: curl, fetchmail, mpop."""
    server_args = {"tls": True, "pop3": True}

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="carteiro-pop3-client-")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp])
        super().tearDown()

    def send(self, bodies, to=DEMO):
        with self.server.smtp() as s:
            for i, body in enumerate(bodies):
                s.sendmail("a@example.org", [to], message(subject=f"client {i}", body=body,
                                                          to=to))
        return self.server.wait_mail(to, len(bodies))

    def test_curl_pop3_and_pop3s(self):
        stored = self.send([".dot\r\nend\r\n"])[0]
        ca = test_pki()["ca"]
        for url, extra in ((f"pop3://127.0.0.1:{self.server.pop3_port}/1", []),
                           (f"pop3://127.0.0.1:{self.server.pop3_port}/1",
                            ["--ssl-reqd", "--cacert", ca]),
                           (f"pop3s://localhost:{self.server.pop3s_port}/1", ["--cacert", ca])):
            with self.subTest(url=url, extra=extra):
                p = subprocess.run(["curl", "-sS", "--user", f"{DEMO}:{PASSWORD}", url] + extra,
                                   capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, wire(stored))
        p = subprocess.run(["curl", "-sS", "--user", f"{DEMO}:{PASSWORD}",
                            f"pop3://127.0.0.1:{self.server.pop3_port}/"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"^1 \d+\r\n$")

    def fetchmail(self, local, delivery):
        """Run fetchmail once over POP3 with TLS for DEMO's mail: local is its "is ... here"
        name, delivery its mda or smtphost line. The process, checked."""
        rc = os.path.join(self.tmp, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f"poll 127.0.0.1 service {self.server.pop3_port} protocol pop3\n"
                    f"  user \"{DEMO}\" password \"{PASSWORD}\" is {local} here\n"
                    f"  sslproto 'tls1.2+' sslcertck sslcertfile \"{test_pki()['ca']}\"\n"
                    f"  sslcommonname localhost\n"
                    f"  {delivery}\n")
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.tmp, FETCHMAILHOME=self.tmp)
        p = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "--nosyslog", "-v",
                            # as root its lock is /var/run/fetchmail.pid: one at a time
                            "--pidfile", os.path.join(self.tmp, "fetchmail.pid")],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_fetchmail_fetches_and_deletes(self):
        stored = self.send(["one\r\n", ".dot line\r\nlast\r\n"])
        out = os.path.join(self.tmp, "out")
        self.fetchmail("root", f"mda \"cat >> {out}\"")
        with open(out, "rb") as f:
            got = f.read()
        for m in stored:
            # fetchmail adds its own Received header; the message follows it intact (LF).
            self.assertIn(m.split(b"\n", 2)[2], got)
        self.assertEqual(self.server.mailbox(DEMO), [])  # fetched and deleted at QUIT

    def test_fetchmail_forwards_by_smtp(self):
        # fetchmail's usual set-up: fetch by POP3, hand each message to an SMTP server (its
        # own SMTP client: ESMTP, SIZE, PIPELINING); here our port 25 listener, for another user.
        stored = self.send(["first\r\n", ".dot line\r\nlast\r\n"])
        self.fetchmail('"bob@example.test"', f'smtphost "127.0.0.1/{self.server.port}"')
        got = self.server.wait_mail("bob@example.test", 2)
        for m in stored:
            body = m.split(b"\n\n", 1)[1]
            self.assertTrue(any(g.endswith(body) for g in got), body)
        self.assertEqual(self.server.mailbox(DEMO), [])  # fetched and deleted at QUIT
        self.server.wait_log(r"event=queued from=<a@example\.org> nrcpt=1 ")

    def test_mpop_keeps_by_uidl_and_delivers_to_maildir(self):
        stored = self.send(["first\r\n", "second\r\n"])
        md = os.path.join(self.tmp, "Maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub))
        rc = os.path.join(self.tmp, "mpoprc")
        with open(rc, "w") as f:
            f.write(f"account default\nhost 127.0.0.1\nport {self.server.pop3_port}\n"
                    f"user {DEMO}\npassword {PASSWORD}\nauth user\n"
                    f"tls on\ntls_starttls on\ntls_trust_file {test_pki()['ca']}\n"
                    f"tls_host_override localhost\n"
                    f"delivery maildir {md}\nkeep on\n"
                    f"uidls_file {self.tmp}/uidls\n")
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.tmp)
        for expect in (2, 2):  # the second run fetches nothing new (UIDL)
            p = subprocess.run(["mpop", "-C", rc, "-q"], capture_output=True, text=True,
                               timeout=60, env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            got = []
            for name in sorted(os.listdir(os.path.join(md, "new"))):
                with open(os.path.join(md, "new", name), "rb") as fh:
                    got.append(fh.read())
            self.assertEqual(len(got), expect)
        for m in stored:
            self.assertTrue(any(m.split(b"\n", 2)[2] in g for g in got))
        self.assertEqual(len(self.server.mailbox(DEMO)), 2)  # keep on


if __name__ == "__main__":
    unittest.main()
