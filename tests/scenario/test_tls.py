"""TLS: STARTTLS (RFC 3207) on smtp and submission, implicit TLS (RFC 8314) on submissions, the
protocol floor (TLS 1.2), the plaintext injection of CVE-2011-0411, certificate reload on
SIGHUP, and real clients (openssl s_client, smtplib, swaks)."""
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import unittest

from harness import (DEMO, PASSWORD, Server, ServerTest, SmtpAssertions, make_server_cert,
                     message, test_pki, tls_client_context, wait_count)


def s_client(*args, data="QUIT\r\n", timeout=30):
    """openssl s_client with the test CA; -ign_eof: it sends data, then reads until the server
    closes (so the replies to data are all in stdout)."""
    return subprocess.run(["openssl", "s_client", "-CAfile", test_pki()["ca"], "-ign_eof"]
                          + list(args),
                          input=data, capture_output=True, text=True, timeout=timeout)


class Starttls(SmtpAssertions, ServerTest):
    server_args = {"tls": True}

    def test_ehlo_offers_starttls_not_auth_then_auth_not_starttls(self):
        with self.server.raw() as r:
            lines = self.ehlo(r)
            self.assertIn("250-STARTTLS", lines)
            self.assertFalse([line for line in lines if "AUTH" in line], lines)
            # RFC 4954 6: AUTH needs the encryption that STARTTLS would give.
            self.reply(r, 538, "5.7.11", "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n")
            self.reply(r, 501, "5.5.4", "STARTTLS now\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 503, "5.5.1", "STARTTLS\r\n")  # not inside a transaction
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 220, "2.0.0", "STARTTLS\r\n")
            r.starttls()
            # The session starts over: EHLO first.
            self.reply(r, 503, "5.5.1", "MAIL FROM:<a@example.org>\r\n")
            lines = self.ehlo(r)
            self.assertNotIn("250-STARTTLS", lines)
            self.assertIn("250-AUTH PLAIN LOGIN", lines)
            self.assertEqual(lines[-1], "250 CHUNKING")
            self.reply(r, 503, "5.5.1", "STARTTLS\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.server.wait_log(r"event=tls client=127\.0\.0\.1 tls=TLSv1\.3 cipher=\S+ bits=\d+ "
                             r"mode=starttls")

    def test_plaintext_injection_after_starttls_is_discarded(self):
        with self.server.raw() as r:
            self.ehlo(r)
            # CVE-2011-0411: the RSET rides in the same packet as STARTTLS.
            r.send("STARTTLS\r\nRSET\r\n")
            self.reply(r, 220, "2.0.0")
            self.assertEqual(r.buf, b"")
            r.starttls()
            self.assert_no_pending_reply(r, wait=0.5)
            self.ehlo(r)
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
        self.server.wait_log(r"event=starttls_discarded bytes=6")

    def test_mx_delivery_over_starttls_is_esmtps(self):
        msg = message(subject="over tls")
        with self.server.smtp() as s:
            s.starttls(context=tls_client_context())
            self.assertEqual(s.sendmail("a@example.org", [DEMO], msg), {})
        got = self.server.wait_mail(DEMO)[0].decode()
        self.assertRegex(got, r"\(using TLSv1\.3 with cipher \S+ \(\d+ bits\)\)\n"
                              r"\tby mx\.example\.test \(carteiro\) with ESMTPS id ")
        # Port 25 mail is not submission: nothing added.
        self.assertEqual(got.count("Message-ID:"), 1)

    def test_openssl_s_client_starttls(self):
        p = s_client("-connect", f"127.0.0.1:{self.server.port}", "-starttls", "smtp",
                     "-verify_return_error", "-verify_hostname", "localhost",
                     data="EHLO s-client.example.org\r\nQUIT\r\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Verify return code: 0 (ok)", p.stdout)
        self.assertRegex(p.stdout, r"New, TLSv1\.3, Cipher is TLS_")
        self.assertIn("250-AUTH PLAIN LOGIN", p.stdout)
        self.assertIn("221 2.0.0", p.stdout)

    def test_tls_1_1_and_1_0_are_refused_1_2_works(self):
        for flag in ("-tls1_1", "-tls1"):
            with self.subTest(flag=flag):
                p = s_client("-connect", f"127.0.0.1:{self.server.submissions_port}", flag,
                             "-cipher", "DEFAULT@SECLEVEL=0")
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertIn("Cipher is (NONE)", p.stdout)
                self.assertNotIn("220 ", p.stdout)
        p = s_client("-connect", f"127.0.0.1:{self.server.submissions_port}", "-tls1_2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"Protocol *: TLSv1\.2")
        self.assertRegex(p.stdout, r"Cipher *: ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20)")
        self.assertIn("220 mx.example.test ESMTP carteiro", p.stdout)
        self.server.wait_log(r"event=tls_failed client=127\.0\.0\.1 error=\"[^\"]*"
                             r"unsupported protocol")

    def test_renegotiation_is_refused(self):
        # s_client's "R" line asks for a TLS 1.2 renegotiation.
        script = (f"(sleep 0.5; echo R; sleep 1) | openssl s_client -CAfile {test_pki()['ca']} "
                  f"-tls1_2 -connect 127.0.0.1:{self.server.submissions_port}")
        p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
        self.assertIn("220 mx.example.test ESMTP carteiro", p.stdout)
        self.assertIn("RENEGOTIATING", p.stdout + p.stderr)
        self.assertIn("no renegotiation", p.stdout + p.stderr)
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=\"connection error\"")

    def test_tls_1_2_weak_ciphers_are_refused(self):
        p = s_client("-connect", f"127.0.0.1:{self.server.submissions_port}", "-tls1_2",
                     "-cipher", "AES128-SHA:DES-CBC3-SHA:RC4-SHA@SECLEVEL=0")
        self.assertNotEqual(p.returncode, 0, p.stdout)

    def test_garbage_handshake_is_logged_and_closed(self):
        with self.server.raw(port=self.server.submissions_port, greet=False) as r:
            r.send("EHLO not-tls.example.org\r\n")
            self.assertTrue(r.closed())
        # OpenSSL's reason, whole (the reason was once read twice: the second read found
        # the queue empty and wrote "connection error" and a NUL over the first).
        line = self.server.wait_log(r"event=tls_failed client=127\.0\.0\.1 error=(.*)").group(1)
        self.assertRegex(line, r"^\"error:[0-9A-F]+:SSL routines::[a-z ]+\"$")
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=\"tls handshake "
                             r"failed\"")


class ImplicitTls(SmtpAssertions, ServerTest):
    server_args = {"tls": True}

    def test_submissions_speaks_tls_from_the_first_byte(self):
        with self.server.raw_tls(greet=False) as r:
            self.assertEqual(self.reply(r, 220), ["220 mx.example.test ESMTP carteiro"])
            lines = self.ehlo(r)
            self.assertIn("250-AUTH PLAIN LOGIN", lines)
            self.assertNotIn("250-STARTTLS", lines)
            self.reply(r, 503, "5.5.1", "STARTTLS\r\n")
            self.reply(r, 530, "5.7.0", "MAIL FROM:<alice@example.test>\r\n")
        self.server.wait_log(r"event=tls client=127\.0\.0\.1 tls=TLSv1\.3 .*mode=implicit")

    def test_smtp_ssl_login_and_send(self):
        msg = message(subject="implicit", sender="alice@example.test")
        with self.server.smtps() as s:
            s.login("alice@example.test", PASSWORD)
            self.assertEqual(s.sendmail("alice@example.test", [DEMO], msg), {})
        got = self.server.wait_mail(DEMO)[0].decode()
        self.assertIn("with ESMTPSA id", got)
        self.assertIn("(using TLSv1.3 with cipher", got)

    def test_swaks_tlsc_and_tls(self):
        p = self.server.swaks("--server", f"127.0.0.1:{self.server.submissions_port}", "--tlsc",
                              "--auth", "LOGIN", "--auth-user", "alice@example.test",
                              "--auth-password", PASSWORD, "--from", "alice@example.test",
                              "--to", DEMO, "--header", "Subject: swaks tlsc")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.server.swaks("--server", f"127.0.0.1:{self.server.submission_port}", "--tls",
                              "--auth", "PLAIN", "--auth-user", "alice@example.test",
                              "--auth-password", PASSWORD, "--from", "alice@example.test",
                              "--to", DEMO, "--header", "Subject: swaks tls")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = b"".join(self.server.wait_mail(DEMO, 2)).decode()
        self.assertIn("Subject: swaks tlsc", got)
        self.assertIn("Subject: swaks tls\n", got)
        self.assertEqual(got.count("with ESMTPSA id"), 2)


class Sni(unittest.TestCase):
    def test_second_certificate_chosen_by_server_name(self):
        srv = Server(tls=True).prepare()
        try:
            cert, key = make_server_cert(srv.dir, "other", 4004, cn="mail.other.test",
                                         san="DNS:mail.other.test,DNS:*.other.test")
            srv.extra_config += f"\ntls-cert {cert}\ntls-key {key}\n"
            srv.write_config()
            srv.start()
            for name, serial in (("mail.other.test", "0FA4"), ("imap.other.test", "0FA4"),
                                 ("localhost", "03E9"), ("unknown.example", "03E9")):
                with self.subTest(name=name):
                    p = s_client("-connect", f"127.0.0.1:{srv.submissions_port}",
                                 "-servername", name, "-showcerts")
                    self.assertEqual(p.returncode, 0, p.stderr)
                    x = subprocess.run(["openssl", "x509", "-noout", "-serial"],
                                       input=p.stdout, capture_output=True, text=True)
                    self.assertEqual(x.stdout.strip(), f"serial={serial}")
            srv.wait_log(r"event=tls .*sni=mail\.other\.test")
        finally:
            srv.cleanup()


class HandshakeTimeout(SmtpAssertions, ServerTest):
    server_args = {"tls": True, "extra_config": "smtp-command-timeout 1s"}

    def test_silent_client_is_dropped_after_the_command_timeout(self):
        with self.server.raw(port=self.server.submissions_port, greet=False) as r:
            self.assertTrue(r.closed(timeout=5))
        self.server.wait_log(r"event=tls_failed client=127\.0\.0\.1 error=timeout")


class Reload(SmtpAssertions, unittest.TestCase):
    def peer_serial(self, srv):
        with srv.smtps() as s:
            return s.sock.getpeercert()["serialNumber"]

    def test_sighup_reloads_a_changed_certificate(self):
        srv = Server(tls=True, workers=2).prepare()
        try:
            # Files of its own, replaced in place as a renewal (certbot) does.
            srv.tls_cert = os.path.join(srv.dir, "cert.pem")
            srv.tls_key = os.path.join(srv.dir, "key.pem")
            shutil.copy(test_pki()["cert"], srv.tls_cert)
            shutil.copy(test_pki()["key"], srv.tls_key)
            srv.write_config()
            srv.start()
            self.assertEqual(int(self.peer_serial(srv), 16), 1001)
            cert, key = make_server_cert(srv.dir, "renewed", 2002)
            shutil.copy(cert, srv.tls_cert)
            shutil.copy(key, srv.tls_key)
            srv.reload()
            # The master and both workers.
            wait_count(srv, r"event=tls_reload result=ok certificates=1", 3)
            for _ in range(4):  # whichever worker takes the connection
                self.assertEqual(int(self.peer_serial(srv), 16), 2002)
            # A broken key: the reload fails, the last good certificate stays in use.
            with open(srv.tls_key, "w") as f:
                f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
            srv.reload()
            wait_count(srv, r"event=tls_reload result=failed keeping=previous error=", 3)
            for _ in range(2):
                self.assertEqual(int(self.peer_serial(srv), 16), 2002)
        finally:
            srv.cleanup()


class CheckCommand(unittest.TestCase):
    def test_check_reports_unreadable_and_mismatched_keys(self):
        srv = Server(tls=True).prepare()
        try:
            ok = srv.carteiro("check", "-c", srv.config_path)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            _, other_key = make_server_cert(srv.dir, "other", 3003)
            srv.tls_key = other_key  # the key of another certificate
            srv.write_config()
            p = srv.carteiro("check", "-c", srv.config_path)
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stderr, r"tls-key \S+other\.key does not match tls-cert \S+")
            srv.tls_key = os.path.join(srv.dir, "missing.key")
            srv.write_config()
            p = srv.carteiro("check", "-c", srv.config_path)
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stderr, r"tls-key \S+missing\.key: .*(No such file|no such file)")
            # The server refuses to start with it.
            with self.assertRaisesRegex(RuntimeError, r"server exited with 1"):
                srv.start()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
