"""Submission (RFC 6409) on the submission and submissions listeners: AUTH required before MAIL
(530 5.7.0), sender binding (553 5.7.1), relaying for authenticated users, Date and Message-ID
added when missing, the Received header (ESMTPSA, TLS, the user only with received-show-auth),
and desktop-like clients (msmtp, curl)."""
import os
import re
import subprocess
import unittest

from harness import (DEMO, PASSWORD, ServerTest, SmtpAssertions, message, test_pki,
                     tls_client_context)

ALICE = "alice@example.test"
ALIASES = {
    "postmaster@example.test": ["demo@example.test"],
    "team@example.test": ["alice@example.test", "bob@example.test"],
    "a.liddell@example.test": ["alice@example.test"],
    "wonder@example.test": ["a.liddell@example.test"],
}


def submit_one(server, client):
    """Log in as alice with client (an smtplib connection), send one message to demo; the
    message as delivered."""
    with client as s:
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [DEMO], message(sender=ALICE))
    return server.wait_mail(DEMO)[0].decode()


class Submission(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "aliases": ALIASES, "extra_config": "auth-failure-delay 0"}

    def test_mail_before_auth_is_refused(self):
        for port in (self.server.submission_port, None):
            with self.subTest(port=port):
                if port:
                    r = self.server.raw(port=port)
                    self.ehlo(r)
                    self.reply(r, 220, "2.0.0", "STARTTLS\r\n")
                    r.starttls()
                else:
                    r = self.server.raw_tls()
                with r:
                    self.ehlo(r)
                    self.reply(r, 530, "5.7.0", f"MAIL FROM:<{ALICE}>\r\n")
                    self.reply(r, 503, "5.5.1", f"RCPT TO:<{DEMO}>\r\n")
        # Before STARTTLS on 587 too, and the MX port does not require AUTH.
        with self.server.raw(port=self.server.submission_port) as r:
            self.ehlo(r)
            self.reply(r, 530, "5.7.0", f"MAIL FROM:<{ALICE}>\r\n")
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
        self.server.wait_log(r"event=reject stage=mail reason=auth_required client=127\.0\.0\.1")

    def test_sender_binding(self):
        allowed = [ALICE, "Alice@EXAMPLE.test", "a.liddell@example.test", "wonder@example.test",
                   "alice+lists@example.test", "team@example.test", ""]
        refused = [DEMO, "bob@example.test", "postmaster@example.test", "alice@other.test",
                   "alice@example.org", "nobody@example.test", "alice@[127.0.0.1]"]
        with self.server.submission() as s:
            s.login(ALICE, PASSWORD)
            for sender in allowed:
                code, msg = s.mail(f"<{sender}>")
                self.assertEqual(code, 250, (sender, msg))
                s.rset()
            for sender in refused:
                code, msg = s.mail(f"<{sender}>")
                self.assertEqual(code, 553, (sender, msg))
                self.assertTrue(msg.startswith(b"5.7.1 "), msg)
        self.server.wait_log(r"reason=sender_not_owned user=alice@example\.test "
                             r"from=<demo@example\.test>")

    def test_relay_to_a_remote_domain_when_authenticated(self):
        with self.server.smtps() as s:
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.sendmail(ALICE, ["friend@far-away.example"],
                                        message(sender=ALICE, to="friend@far-away.example")),
                             {})
        m = self.server.wait_log(r"qid=(\w+) event=rcpt to=<friend@far-away\.example> "
                                 r"result=accepted relay=<friend@far-away\.example>")
        qid = m.group(1)
        self.server.wait_log(rf"qid={qid} event=queued from=<alice@example\.test>")
        self.assertRegex(self.server.queue_list(),
                         r"-> friend@far-away\.example \(remote, [a-z]+\)")
        # Without AUTH, the same client on port 25 may not relay.
        with self.server.smtp() as s:
            s.starttls(context=tls_client_context())
            s.ehlo()
            code, _ = s.mail(f"<{ALICE}>")
            self.assertEqual(code, 250)
            code, _ = s.rcpt("<friend@far-away.example>")
            self.assertEqual(code, 554)

    def test_date_and_message_id_added_when_missing(self):
        bare = "From: <alice@example.test>\r\nSubject: bare\r\n\r\nNo Date here.\r\n"
        full = message(subject="full", sender=ALICE, extra_headers="Date: Mon, 1 Jan 2024 "
                       "00:00:00 +0000\r\n")
        headers_only = "Subject: only headers\r\nX-Test: 1\r\n"
        with self.server.submission() as s:
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, [DEMO], bare)
            s.sendmail(ALICE, [DEMO], full)
            s.sendmail(ALICE, [DEMO], headers_only)
        msgs = [m.decode() for m in self.server.wait_mail(DEMO, 3)]
        by_subject = {re.search(r"Subject: (.*)", m).group(1): m for m in msgs}
        got = by_subject["bare"]
        head, body = got.split("\n\n", 1)
        self.assertEqual(body, "No Date here.\n")
        self.assertRegex(head, r"\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\n")
        self.assertRegex(head, r"\nMessage-ID: <\d{14}\.\w+@mx\.example\.test>$")
        got = by_subject["full"]
        self.assertEqual(got.count("Date:"), 1)
        self.assertEqual(got.count("Message-ID:"), 1)
        self.assertIn("Date: Mon, 1 Jan 2024", got)
        got = by_subject["only headers"]
        self.assertIn("X-Test: 1\nDate: ", got)
        self.assertIn("\nMessage-ID: <", got)
        # Mail to port 25 (not submission, not authenticated) is left alone.
        with self.server.smtp() as s:
            s.sendmail("a@example.org", [DEMO], "Subject: mx\r\n\r\nbody\r\n")
        msgs = self.server.wait_mail(DEMO, 4)
        mx = [m.decode() for m in msgs if b"Subject: mx" in m][0]
        self.assertNotIn("Message-ID:", mx)
        self.assertNotIn("\nDate:", mx)

    def test_received_names_tls_not_the_user_by_default(self):
        got = submit_one(self.server, self.server.submission())
        self.assertRegex(got, r"Received: from client\.example\.org \(\[127\.0\.0\.1\]\)\n"
                              r"\t\(using TLSv1\.3 with cipher \S+ \(\d+ bits\)\)\n"
                              r"\tby mx\.example\.test \(carteiro\) with ESMTPSA id \w+\n")
        self.assertNotIn("alice@example.test)", got)
        self.assertNotIn("authenticated", got)


class ShowAuth(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "extra_config": "received-show-auth yes\nauth-failure-delay 0"}

    def test_received_names_the_user(self):
        got = submit_one(self.server, self.server.smtps())
        self.assertRegex(got, r"\t\(authenticated as alice@example\.test\)\n"
                              r"\tby mx\.example\.test \(carteiro\) with ESMTPSA id ")


class Msmtp(ServerTest):
    server_args = {"tls": True, "extra_config": "auth-failure-delay 0"}

    def msmtp(self, port, tls_starttls, msg, password=PASSWORD, extra=""):
        rc = os.path.join(self.server.dir, f"msmtprc-{port}")
        with open(rc, "w") as f:
            f.write(f"""defaults
tls on
tls_trust_file {test_pki()["ca"]}
logfile {self.server.dir}/msmtp.log

account carteiro
host 127.0.0.1
port {port}
tls_starttls {"on" if tls_starttls else "off"}
auth on
user {ALICE}
password {password}
from {ALICE}
{extra}
account default : carteiro
""")
        os.chmod(rc, 0o600)
        return subprocess.run(["msmtp", "-C", rc, DEMO], input=msg, capture_output=True,
                              text=True, timeout=60)

    def test_msmtp_on_587_and_465(self):
        p = self.msmtp(self.server.submission_port, True, "Subject: msmtp 587\n\nHello.\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.msmtp(self.server.submissions_port, False, "Subject: msmtp 465\n\nHello.\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        msgs = b"".join(self.server.wait_mail(DEMO, 2)).decode()
        self.assertIn("Subject: msmtp 587", msgs)
        self.assertIn("Subject: msmtp 465", msgs)
        self.assertEqual(msgs.count("with ESMTPSA id"), 2)
        p = self.msmtp(self.server.submission_port, True, "Subject: no\n\nx\n",
                       password="wrong")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("535", p.stderr + p.stdout)

    def test_msmtp_asks_for_a_delivery_report(self):
        # msmtp's dsn_notify/dsn_return (RFC 3461): the success report comes back to alice.
        p = self.msmtp(self.server.submission_port, True, "Subject: msmtp dsn\n\nHello.\n",
                       extra="dsn_notify success,failure\ndsn_return headers\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"Subject: msmtp dsn", self.server.wait_mail(DEMO)[0])
        report = self.server.wait_mail(ALICE)[0]
        self.assertIn(b"Subject: Successful Mail Delivery Report\n", report)
        self.assertIn(b"Final-Recipient: rfc822; demo@example.test\nAction: delivered\n", report)
        self.assertIn(b"Subject: msmtp dsn", report)  # the headers, returned


class Curl(ServerTest):
    """libcurl's SMTP client: STARTTLS required (--ssl-reqd) on 587, implicit TLS on 465,
    AUTH, several recipients, and a wrong password."""
    server_args = {"tls": True, "extra_config": "auth-failure-delay 0"}

    def curl(self, url, msg, rcpts=(DEMO,), password=PASSWORD):
        args = ["curl", "-sS", "--cacert", test_pki()["ca"], "--user", f"{ALICE}:{password}",
                "--mail-from", ALICE, "--upload-file", "-", url]
        for r in rcpts:
            args[1:1] = ["--mail-rcpt", r]
        return subprocess.run(args, input=msg, capture_output=True, timeout=60)

    def test_curl_on_587_and_465(self):
        # Without TLS we offer no AUTH, and refuse MAIL before it: curl gets nowhere.
        p = self.curl(f"smtp://localhost:{self.server.submission_port}", b"x")
        self.assertNotEqual(p.returncode, 0)
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 .*messages=0")
        self.assertNotRegex(self.server.log(), r"event=auth ")
        p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", test_pki()["ca"],
                            "--user", f"{ALICE}:{PASSWORD}", "--mail-from", ALICE,
                            "--mail-rcpt", DEMO, "--mail-rcpt", "bob@example.test",
                            "--upload-file", "-",
                            f"smtp://localhost:{self.server.submission_port}"],
                           input=b"Subject: curl 587\r\n\r\n.dot line\r\nHello.\r\n",
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.curl(f"smtps://localhost:{self.server.submissions_port}",
                      b"Subject: curl 465\r\n\r\nHello.\r\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        msgs = self.server.wait_mail(DEMO, 2)
        self.assertEqual(len(self.server.wait_mail("bob@example.test")), 1)
        text = b"".join(msgs)
        self.assertIn(b"Subject: curl 587\n", text)
        self.assertIn(b"\n.dot line\nHello.\n", text)  # curl stuffed the dot, we took it off
        self.assertIn(b"Subject: curl 465\n", text)
        self.assertEqual(text.count(b"with ESMTPSA id"), 2)
        p = self.curl(f"smtps://localhost:{self.server.submissions_port}", b"x",
                      password="wrong")
        self.assertEqual(p.returncode, 67, p.stderr)  # CURLE_LOGIN_DENIED
        self.server.wait_log(r"event=auth_failed client=127\.0\.0\.1 user=alice@example\.test "
                             r"mechanism=PLAIN failures=1")


if __name__ == "__main__":
    unittest.main()
