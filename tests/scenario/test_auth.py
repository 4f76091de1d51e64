"""AUTH (RFC 4954): PLAIN and LOGIN over TLS, failures (535 5.7.8) and their delay, the
brute-force ban shared by the workers (421 4.7.0), cancelling, sequencing, credentials kept out
of the log, plaintext AUTH for loopback clients when configured, and `carteiro passwd`."""
import base64
import re
import subprocess
import time
import unittest

from harness import (BINARY, DEMO, PASSWORD, Server, ServerTest, SmtpAssertions, count_log,
                     wait_count)


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


ALICE = "alice@example.test"
PLAIN_OK = b64(f"\0{ALICE}\0{PASSWORD}")
PLAIN_BAD = b64(f"\0{ALICE}\0not-the-password")


class AuthTest(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "extra_config": "auth-failure-delay 0\nlog-level debug"}

    def tls_session(self):
        """Greeted, STARTTLS done on the submission port, EHLO again."""
        r = self.server.raw(port=self.server.submission_port)
        self.ehlo(r)
        self.reply(r, 220, "2.0.0", "STARTTLS\r\n")
        r.starttls()
        self.ehlo(r)
        return r

    def test_plain_with_initial_response(self):
        with self.tls_session() as r:
            self.reply(r, 235, "2.7.0", f"AUTH PLAIN {PLAIN_OK}\r\n")
            lines = self.ehlo(r)
            self.assertFalse([line for line in lines if "AUTH" in line], lines)
            self.reply(r, 503, "5.5.1", f"AUTH PLAIN {PLAIN_OK}\r\n")
        self.server.wait_log(r"event=auth client=127\.0\.0\.1 user=alice@example\.test "
                             r"mechanism=PLAIN result=ok")

    def test_plain_with_empty_challenge_and_login(self):
        with self.tls_session() as r:
            self.assertEqual(self.reply(r, 334, None, "AUTH PLAIN\r\n"), ["334 "])
            self.reply(r, 235, "2.7.0", PLAIN_OK + "\r\n")
        with self.tls_session() as r:
            self.assertEqual(self.reply(r, 334, None, "auth login\r\n"), ["334 VXNlcm5hbWU6"])
            self.assertEqual(self.reply(r, 334, None, b64("Alice@Example.Test") + "\r\n"),
                             ["334 UGFzc3dvcmQ6"])
            self.reply(r, 235, "2.7.0", b64(PASSWORD) + "\r\n")
        self.server.wait_log(r"user=alice@example\.test mechanism=LOGIN result=ok")

    def test_smtplib_login_plain_and_login(self):
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech=mech), self.server.submission() as s:
                s.user, s.password = ALICE, PASSWORD
                code, _ = s.auth(mech, getattr(s, f"auth_{mech.lower()}"),
                                 initial_response_ok=(mech == "PLAIN"))
                self.assertEqual(code, 235)
                self.assertEqual(s.sendmail(ALICE, [DEMO], f"Subject: {mech}\r\n\r\nhi\r\n"), {})
        msgs = self.server.wait_mail(DEMO, 2)
        for m in msgs:
            self.assertIn(b"with ESMTPSA id", m)

    def test_wrong_password_unknown_user_and_bad_input(self):
        with self.tls_session() as r:
            self.reply(r, 535, "5.7.8", f"AUTH PLAIN {PLAIN_BAD}\r\n")
            self.reply(r, 535, "5.7.8", f"AUTH PLAIN {b64(chr(0) + 'nobody@example.test' + chr(0) + PASSWORD)}\r\n")
            # Not base64; a proxy authorization; cancelled; unknown mechanism; in a transaction.
            self.reply(r, 501, "5.5.2", "AUTH PLAIN not-base64!\r\n")
            self.reply(r, 501, "5.5.2", f"AUTH PLAIN {b64('demo@example.test' + chr(0) + ALICE + chr(0) + PASSWORD)}\r\n")
            self.reply(r, 334, None, "AUTH LOGIN\r\n")
            self.reply(r, 501, "5.0.0", "*\r\n")
            self.reply(r, 504, "5.5.4", "AUTH CRAM-MD5\r\n")
            self.reply(r, 501, "5.5.4", "AUTH PLAIN a b\r\n")
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
        for n, user in ((1, "alice"), (2, "nobody")):
            self.server.wait_log(rf"event=auth_failed client=127\.0\.0\.1 user={user}@example"
                                 rf"\.test mechanism=PLAIN failures={n}")

    def test_line_limits(self):
        with self.tls_session() as r:
            # RFC 4954 4: 12288 octets of response are allowed; more is refused whole.
            self.reply(r, 501, "5.5.2", "AUTH PLAIN " + "A" * 12276 + "\r\n")
            self.reply(r, 500, "5.5.2", "AUTH PLAIN " + "A" * 12280 + "\r\n")
            self.reply(r, 334, None, "AUTH LOGIN\r\n")
            self.reply(r, 500, "5.5.2", "B" * 20000 + "\r\n")
            # The exchange is over: this is a command again.
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
            self.reply(r, 334, None, "AUTH LOGIN\r\n")
            self.reply(r, 500, "5.5.2", "bare-lf\n")
            self.reply(r, 235, "2.7.0", f"AUTH PLAIN {PLAIN_OK}\r\n")

    def test_auth_not_during_a_transaction_nor_before_ehlo(self):
        with self.tls_session() as r:
            self.reply(r, 235, "2.7.0", f"AUTH PLAIN {PLAIN_OK}\r\n")
            self.reply(r, 250, "2.1.0", f"MAIL FROM:<{ALICE}>\r\n")
            self.reply(r, 503, "5.5.1", f"AUTH PLAIN {PLAIN_OK}\r\n")
        with self.server.raw(port=self.server.submissions_port, greet=False) as r:
            r.starttls()
            self.reply(r, 220)
            self.reply(r, 503, "5.5.1", f"AUTH PLAIN {PLAIN_OK}\r\n")

    def test_pipelined_auth_and_mail(self):
        # The session waits for the check: MAIL is answered after the 235, in order.
        with self.tls_session() as r:
            r.send(f"AUTH PLAIN {PLAIN_OK}\r\nMAIL FROM:<{ALICE}>\r\nRCPT TO:<{DEMO}>\r\n")
            self.reply(r, 235, "2.7.0")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")

    def test_close_during_the_check(self):
        for _ in range(3):
            r = self.tls_session()
            r.send(f"AUTH PLAIN {PLAIN_OK}\r\n")
            r.close()
        wait_count(self.server, r"event=disconnect client=127\.0\.0\.1 reason=", 4)
        with self.tls_session() as r:
            self.reply(r, 235, "2.7.0", f"AUTH PLAIN {PLAIN_OK}\r\n")

    def test_credentials_never_logged(self):
        secret_b64 = [PLAIN_OK, b64(PASSWORD), PLAIN_BAD, b64("not-the-password")]
        with self.tls_session() as r:
            self.reply(r, 535, "5.7.8", f"AUTH PLAIN {PLAIN_BAD}\r\n")
            self.reply(r, 334, None, "AUTH LOGIN\r\n")
            self.reply(r, 334, None, b64(ALICE) + "\r\n")
            self.reply(r, 235, "2.7.0", b64(PASSWORD) + "\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.server.wait_log(r"event=disconnect")
        log = self.server.log()
        self.assertIn("event=command verb=AUTH", log)  # debug level is on
        for s in secret_b64 + [PASSWORD, "not-the-password"]:
            self.assertNotIn(s, log)


class BruteForce(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "workers": 2,
                   "extra_config": "auth-max-failures 3\nauth-ban-time 1h\nauth-failure-delay 1s"}

    def attempt(self, r, code, enhanced, password="wrong"):
        return self.reply(r, code, enhanced,
                          f"AUTH PLAIN {b64(chr(0) + ALICE + chr(0) + password)}\r\n")

    def test_failures_are_delayed_then_banned_across_workers(self):
        with self.server.raw_tls() as r:
            self.ehlo(r)
            start = time.monotonic()
            self.attempt(r, 535, "5.7.8")
            self.assertGreaterEqual(time.monotonic() - start, 0.9)
            # The delay does not hold up the loop: another client is served meanwhile.
            r.send(f"AUTH PLAIN {b64(chr(0) + ALICE + chr(0) + 'wrong')}\r\n")
            with self.server.raw_tls() as other:
                t = time.monotonic()
                self.ehlo(other)
                self.assertLess(time.monotonic() - t, 0.8)
            self.reply(r, 535, "5.7.8")
        # New connections (either worker): the third failure bans the address.
        with self.server.raw_tls() as r:
            self.ehlo(r)
            self.attempt(r, 421, "4.7.0")
            self.assertTrue(r.closed())
        for _ in range(3):
            with self.server.raw_tls() as r:
                self.ehlo(r)
                # Even the right password: the address is banned.
                self.attempt(r, 421, "4.7.0", password=PASSWORD)
                self.assertTrue(r.closed())
        # One greppable line per failure (fail2ban), and the bans.
        self.assertEqual(count_log(self.server, r"event=auth_failed client=127\.0\.0\.1 "
                                                r"user=alice@example\.test mechanism=PLAIN "
                                                r"failures=\d"), 3)
        self.server.wait_log(r"failures=3 banned=yes")
        self.assertEqual(count_log(self.server, r"event=auth_refused client=127\.0\.0\.1 "
                                                r"reason=banned"), 3)
        # Mail without AUTH (port 25) still flows from that address.
        with self.server.smtp() as s:
            self.assertEqual(s.sendmail("a@example.org", [DEMO], "Subject: x\r\n\r\nx\r\n"), {})


class ShutdownDuringDelay(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "extra_config": "auth-failure-delay 2s"}

    def test_sigterm_while_a_failure_is_delayed(self):
        with self.server.raw_tls() as r:
            self.ehlo(r)
            r.send(f"AUTH PLAIN {PLAIN_BAD}\r\n")
            self.server.wait_log(r"event=auth_failed client=127\.0\.0\.1 ")
            self.server.proc.send_signal(__import__("signal").SIGTERM)
            # The pending answer is given, then the shutdown one, then the connection closes.
            self.reply(r, 535, "5.7.8")
            self.reply(r, 421, "4.3.2")
            self.assertTrue(r.closed())
        self.assertEqual(self.server.stop(), 0)


class PlaintextLoopback(SmtpAssertions, unittest.TestCase):
    def test_auth_without_tls_only_when_configured(self):
        with Server(extra_config="auth-plaintext-loopback yes") as srv:
            with srv.raw() as r:
                lines = self.ehlo(r)
                self.assertIn("250-AUTH PLAIN LOGIN", lines)
                self.reply(r, 502, "5.5.1", "STARTTLS\r\n")
                self.reply(r, 235, "2.7.0", f"AUTH PLAIN {PLAIN_OK}\r\n")
                self.reply(r, 250, "2.1.0", f"MAIL FROM:<{ALICE}>\r\n")
                self.reply(r, 250, "2.1.5", "RCPT TO:<someone@far.example>\r\n")
                lines = self.reply(r, 354, None, "DATA\r\n")
                self.reply(r, 250, "2.0.0", "Subject: p\r\n\r\nx\r\n.\r\n")
            srv.wait_log(r"event=queued from=<alice@example\.test>")
            self.assertRegex(srv.queue_list(), r"-> someone@far\.example \(remote, [a-z]+\)")


class PasswdCommand(SmtpAssertions, unittest.TestCase):
    def test_passwd_hash_works_for_auth(self):
        p = subprocess.run([BINARY, "passwd"], input="correct horse\n", capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        hashed = p.stdout.strip()
        self.assertRegex(hashed, r"^\$y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{43}$")
        p = subprocess.run([BINARY, "passwd"], input="", capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1)
        with Server(tls=True, users_hashes={ALICE: hashed},
                    extra_config="auth-failure-delay 0") as srv:
            with srv.submission() as s:
                s.login(ALICE, "correct horse")
            with srv.submission() as s:
                with self.assertRaises(Exception) as cm:
                    s.login(ALICE, PASSWORD)
                self.assertIn("535", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
