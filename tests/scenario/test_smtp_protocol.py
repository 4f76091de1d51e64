"""SMTP protocol scenarios: the greeting, EHLO/HELO, the command set and its replies
(RFC 5321 4.1, 4.2, 4.3.2), command sequencing, the error limit, PIPELINING (RFC 2920)
with raw sockets and swaks, several transactions in one session, and the log lines
that tell one message's story."""
import re
import signal
import socket
import threading
import time
import unittest

from harness import Raw, ServerTest, SmtpAssertions, lf, message

EHLO_KEYWORDS = ["PIPELINING", "SIZE 36700160", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                 "SMTPUTF8", "CHUNKING"]


class Greeting(SmtpAssertions, ServerTest):
    def test_banner_and_ehlo_advertise_exactly_the_extensions(self):
        with self.server.raw(greet=False) as r:
            self.assertEqual(self.reply(r, 220), ["220 mx.example.test ESMTP carteiro"])
            lines = self.ehlo(r)
            self.assertEqual(lines[0], "250-mx.example.test Hello [127.0.0.1]")
            self.assertEqual([line[4:] for line in lines[1:]], EHLO_KEYWORDS)
            self.assertTrue(all(line.startswith("250-") for line in lines[:-1]), lines)
            self.assertTrue(lines[-1].startswith("250 "), lines)
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(r.closed())

    def test_smtplib_sees_the_extensions(self):
        with self.server.smtp() as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            self.assertEqual(sorted(s.esmtp_features),
                             sorted(["pipelining", "size", "enhancedstatuscodes", "8bitmime",
                                     "dsn", "smtputf8", "chunking"]))
            self.assertEqual(s.esmtp_features["size"], "36700160")

    def test_ehlo_without_argument_is_refused(self):
        with self.server.raw() as r:
            self.reply(r, 501, "5.5.4", "EHLO\r\n")
            self.reply(r, 501, "5.5.4", "HELO\r\n")
            self.reply(r, 501, "5.5.4", "EHLO bad..name\r\n")
            # Still no HELO: a transaction cannot start.
            self.reply(r, 503, "5.5.1", "MAIL FROM:<a@example.org>\r\n")
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")

    def test_helo_gives_plain_smtp_and_no_extensions(self):
        with self.server.raw() as r:
            self.assertEqual(self.reply(r, 250, None, "HELO old.example.org\r\n"),
                             ["250 mx.example.test"])
            self.reply(r, 250, "2.1.0", "MAIL FROM:<old@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="helo", sender="old@example.org")
            qid = self.queued_id(self.reply(r, 250, "2.0.0", msg + ".\r\n"))
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        self.assertIn(b"Received: from old.example.org ([127.0.0.1])\n\tby mx.example.test "
                      b"(carteiro) with SMTP id " + qid.encode() + b"\n\tfor "
                      b"<demo@example.test>; ", got[0])
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_smtplib_helo_only_session_delivers(self):
        msg = message(subject="smtplib helo")
        with self.server.smtp(helo="plain.example.org") as s:
            self.assertEqual(s.helo()[0], 250)
            self.assertEqual(s.sendmail("a@example.org", ["demo@example.test"], msg), {})
        got = self.server.wait_mail("demo@example.test")
        self.assertIn(b"Received: from plain.example.org ([127.0.0.1])", got[0])
        self.assertIn(b"(carteiro) with SMTP id ", got[0])

    def test_ehlo_gives_esmtp_in_received(self):
        msg = message(subject="esmtp")
        with self.server.smtp() as s:
            s.sendmail("a@example.org", ["demo@example.test"], msg)
        got = self.server.wait_mail("demo@example.test")
        self.assertIn(b"(carteiro) with ESMTP id ", got[0])


    def test_helo_address_literals(self):
        with self.server.raw() as r:
            self.ehlo(r, "[127.0.0.1]")
            self.ehlo(r, "[IPv6:::1]")
            self.ehlo(r, "win_host.example.org")
            self.reply(r, 501, "5.5.4", "EHLO [300.1.1.1]\r\n")
            self.reply(r, 501, "5.5.4", "EHLO 127.0.0.1]\r\n")
            self.reply(r, 501, "5.5.4", "EHLO bad name\r\n")
            self.ehlo(r, "[127.0.0.1]")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            self.reply(r, 250, "2.0.0", message(subject="literal") + ".\r\n")
        got = self.server.wait_mail("demo@example.test")
        self.assertIn(b"\nReceived: from [127.0.0.1] ([127.0.0.1])\n", got[0])


class Commands(SmtpAssertions, ServerTest):
    def test_commands_before_helo_get_503(self):
        with self.server.raw() as r:
            self.reply(r, 503, "5.5.1", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 503, "5.5.1", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            # These need no HELO (RFC 5321 4.1.4).
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 214, "2.0.0", "HELP\r\n")
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(r.closed())

    def test_vrfy_help_noop_expn_unknown_quit(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 252, "2.5.0", "VRFY demo\r\n")
            self.reply(r, 252, "2.5.0", "VRFY nosuchuser@example.test\r\n")
            self.reply(r, 214, "2.0.0", "HELP\r\n")
            self.reply(r, 214, "2.0.0", "HELP MAIL\r\n")
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
            self.reply(r, 250, "2.0.0", "NOOP with an argument\r\n")
            self.reply(r, 502, "5.5.1", "EXPN team@example.test\r\n")
            self.reply(r, 500, "5.5.2", "XYZZY\r\n")
            self.reply(r, 500, "5.5.2", "MAILFROM:<a@example.org>\r\n")
            # Verbs are case-insensitive.
            self.reply(r, 250, "2.0.0", "noop\r\n")
            self.reply(r, 250, "2.1.0", "mail from:<a@example.org>\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(r.closed())

    def test_rset_ends_the_transaction(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            # No transaction now: neither DATA nor RCPT.
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.reply(r, 503, "5.5.1", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<b@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<alice@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="after rset", sender="b@example.org")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        got = self.server.wait_mail("alice@example.test")
        self.assertTrue(got[0].startswith(b"Return-Path: <b@example.org>\n"), got[0][:80])
        self.assertTrue(got[0].endswith(lf(msg)))
        self.server.wait_queue_empty()
        self.assertEqual(self.server.mailbox("demo@example.test"), [])

    def test_ehlo_again_resets_the_transaction(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.ehlo(r, "again.example.org")
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")

    def test_bad_sequences(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 503, "5.5.1", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.reply(r, 503, "5.5.1", "MAIL FROM:<other@example.org>\r\n")
            # The transaction survived the refused commands, with its first sender.
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 503, "5.5.1", "MAIL FROM:<other@example.org>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="sequence")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"Return-Path: <a@example.org>\n"), got[0][:80])
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_quit_in_a_transaction_delivers_nothing(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(r.closed())
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=quit messages=0")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.server.incoming_files(), [])
        self.assertEqual(self.server.mailbox("demo@example.test"), [])

    def test_nothing_is_answered_after_quit(self):
        with self.server.raw() as r:
            self.ehlo(r)
            r.send("QUIT\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n")
            self.reply(r, 221, "2.0.0")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    def test_starttls_and_auth_are_not_offered(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 502, "5.5.1", "STARTTLS\r\n")
            self.reply(r, 502, "5.5.1", "AUTH PLAIN AGRhAGI=\r\n")
            self.reply(r, 250, "2.0.0", "NOOP\r\n")


class ErrorLimit(SmtpAssertions, ServerTest):
    server_args = {"extra_config": "smtp-max-errors 3"}

    def test_too_many_errors_gives_421_and_closes(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 500, "5.5.2", "BOGUS1\r\n")
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.reply(r, 250, "2.0.0", "NOOP\r\n")  # a good command does not reset the count
            r.send("BOGUS3\r\n")
            self.reply(r, 500, "5.5.2")
            lines = self.reply(r, 421, "4.7.0")
            self.assertIn("Too many errors", lines[-1])
            self.assertTrue(r.closed())
        self.server.wait_log(r"event=too_many_errors errors=3")
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=\"too many errors\"")

    def test_errors_below_the_limit_keep_the_session(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 500, "5.5.2", "BOGUS1\r\n")
            self.reply(r, 500, "5.5.2", "BOGUS2\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            self.reply(r, 250, "2.0.0", message(subject="limit") + ".\r\n")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.server.wait_mail("demo@example.test")

    def test_unknown_recipients_count_as_errors(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 550, "5.1.1", "RCPT TO:<nobody1@example.test>\r\n")
            self.reply(r, 550, "5.1.1", "RCPT TO:<nobody2@example.test>\r\n")
            r.send("RCPT TO:<nobody3@example.test>\r\n")
            self.reply(r, 550, "5.1.1")
            self.reply(r, 421, "4.7.0")
            self.assertTrue(r.closed())
        self.server.wait_log(r"event=disconnect .*reason=\"too many errors\"")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.server.incoming_files(), [])


class Pipelining(SmtpAssertions, ServerTest):
    def test_groups_in_one_write_each(self):
        msg1 = message(subject="pipelined one", to="demo@example.test")
        msg2 = message(subject="pipelined two", sender="b@example.org", to="bob@example.test")
        with self.server.raw() as r:
            self.ehlo(r)
            r.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@example.test>\r\n"
                   "RCPT TO:<alice@example.test>\r\nDATA\r\n")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 354)
            # The content, its end, and the next transaction's group: one write.
            r.send(msg1 + ".\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
                   "DATA\r\n")
            qid1 = self.queued_id(self.reply(r, 250, "2.0.0"))
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 354)
            r.send(msg2 + ".\r\nQUIT\r\n")
            qid2 = self.queued_id(self.reply(r, 250, "2.0.0"))
            self.reply(r, 221, "2.0.0")
            self.assertTrue(r.closed())
        self.assertNotEqual(qid1, qid2)
        for rcpt in ("demo@example.test", "alice@example.test"):
            got = self.server.wait_mail(rcpt)
            self.assertEqual(len(got), 1, rcpt)
            self.assertTrue(got[0].endswith(lf(msg1)), rcpt)
            self.assertIn(f" id {qid1};".encode(), got[0])  # two RCPTs: no "for" clause
        got = self.server.wait_mail("bob@example.test")
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"Return-Path: <b@example.org>\n"))
        self.assertTrue(got[0].endswith(lf(msg2)))
        self.assertIn(f" id {qid2}\n\tfor <bob@example.test>;".encode(), got[0])
        self.server.wait_queue_empty()
        self.assertEqual(self.server.mailbox("demo@example.test"),
                         self.server.wait_mail("demo@example.test"))
        self.assertEqual(len(self.server.mailbox("alice@example.test")), 1)

    def test_group_with_a_refused_recipient(self):
        msg = message(subject="partly refused")
        with self.server.raw() as r:
            self.ehlo(r)
            r.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.test>\r\n"
                   "RCPT TO:<demo@example.test>\r\nRCPT TO:<remote@elsewhere.test>\r\nDATA\r\n")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 550, "5.1.1")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 554, "5.7.1")
            self.reply(r, 354)
            r.send(msg + ".\r\nQUIT\r\n")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 221, "2.0.0")
        got = self.server.wait_mail("demo@example.test")
        self.assertTrue(got[0].endswith(lf(msg)))
        self.server.wait_queue_empty()

    def test_group_without_valid_recipient_refuses_data(self):
        with self.server.raw() as r:
            self.ehlo(r)
            r.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n"
                   "RSET\r\nNOOP\r\n")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 550, "5.1.1")
            self.reply(r, 554, "5.5.1")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 250, "2.0.0")
            self.assert_no_pending_reply(r)
        self.assertEqual(self.server.queue_files(), [])

    def test_many_commands_in_one_write_answer_in_order(self):
        with self.server.raw() as r:
            self.ehlo(r)
            n = 300
            r.send("".join(f"MAIL FROM:<s{i}@example.org>\r\nRSET\r\nVRFY x{i}\r\n"
                           for i in range(n)))
            for i in range(n):
                self.reply(r, 250, "2.1.0")
                self.reply(r, 250, "2.0.0")
                self.reply(r, 252, "2.5.0")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")

    def test_whole_session_in_one_write(self):
        """Everything after the greeting in one write, the way a pipelining client that
        trusts 354 would send it after a group: replies still come one per command."""
        msg = message(subject="one write")
        with self.server.raw() as r:
            r.send("EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
                   "RCPT TO:<carol@other.test>\r\nDATA\r\n" + msg + ".\r\nQUIT\r\n")
            self.assertEqual(self.reply(r, 250)[-1], "250 CHUNKING")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 354)
            self.reply(r, 250, "2.0.0")
            self.reply(r, 221, "2.0.0")
            self.assertTrue(r.closed())
        got = self.server.wait_mail("carol@other.test")
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_client_that_reads_late_gets_every_reply(self):
        """Output backpressure: megabytes of replies wait for a client that sends first
        and reads afterwards; none is lost, none out of order."""
        n = 100000  # 9 MB of replies: more than the kernel buffers on the way hold
        # A small receive buffer (set before connect, so the kernel does not grow it).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(10)
        sock.connect((self.server.host, self.server.port))
        r = Raw.__new__(Raw)
        r.sock, r.buf = sock, b""
        with r:
            self.reply(r, 220)
            self.ehlo(r)
            payload = "".join(f"HELP\r\nNOOP {i}\r\n" for i in range(n)).encode()
            sender = threading.Thread(target=r.sock.sendall, args=(payload,))
            sender.start()
            # Let the server fill the socket buffers and its own output buffer, and stop.
            sender.join(0.3)
            try:
                for i in range(n):
                    self.assertEqual(r.reply()[0], 214, i)
                    self.assertEqual(r.reply(), (250, ["250 2.0.0 OK"]), i)
            finally:
                sender.join(30)
            self.reply(r, 221, "2.0.0", "QUIT\r\n")

    def test_bdat_transactions_pipelined_in_one_write(self):
        """RFC 3030 2: BDAT commands may be pipelined, with the next transaction after them."""
        m1 = message(subject="bdat pipe one").encode()
        m2 = message(subject="bdat pipe two", to="bob@example.test").encode()
        half = len(m1) // 2
        with self.server.raw() as r:
            self.ehlo(r)
            r.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@example.test>\r\n"
                   b"BDAT %d\r\n%sBDAT %d LAST\r\n%s"
                   b"MAIL FROM:<b@example.org>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT %d LAST\r\n%sQUIT\r\n"
                   % (half, m1[:half], len(m1) - half, m1[half:], len(m2), m2))
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.assertEqual(self.reply(r, 250, "2.0.0"),
                             [f"250 2.0.0 Chunk received: {half} octets"])
            qid1 = self.queued_id(self.reply(r, 250, "2.0.0"))
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            qid2 = self.queued_id(self.reply(r, 250, "2.0.0"))
            self.reply(r, 221, "2.0.0")
            self.assertTrue(r.closed())
        self.assertNotEqual(qid1, qid2)
        got = self.server.wait_mail("demo@example.test")
        self.assertTrue(got[0].endswith(lf(m1)))
        got = self.server.wait_mail("bob@example.test")
        self.assertTrue(got[0].endswith(lf(m2)))
        self.assertTrue(got[0].startswith(b"Return-Path: <b@example.org>\n"))

    def test_swaks_pipeline(self):
        p = self.server.swaks("--pipeline", "--from", "swaks@example.org",
                              "--to", "demo@example.test,alice@example.test",
                              "--header", "Subject: swaks pipelined", "--body", "Piped body.")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("PIPELINING", p.stdout)
        self.assertRegex(p.stdout, r"<-\s+250 2\.0\.0 OK: queued as [0-9A-Z]{12}")
        # swaks really pipelined: DATA went out before the reply to MAIL came back.
        self.assertLess(p.stdout.index(" -> DATA"), p.stdout.index("<-  250 2.1.0"))
        for rcpt in ("demo@example.test", "alice@example.test"):
            got = self.server.wait_mail(rcpt)
            self.assertEqual(len(got), 1)
            self.assertIn(b"Subject: swaks pipelined\n", got[0])
            self.assertIn(b"\nPiped body.\n", got[0])
            self.assertTrue(got[0].startswith(b"Return-Path: <swaks@example.org>\n"))

    def test_swaks_pipeline_with_refused_recipient(self):
        p = self.server.swaks("--pipeline", "--from", "swaks@example.org",
                              "--to", "nobody@example.test")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("550 5.1.1", p.stdout)
        self.assertEqual(self.server.queue_files(), [])

    def test_several_transactions_in_one_session(self):
        sent = []
        with self.server.smtp() as s:
            for i, rcpts in enumerate([["demo@example.test"], ["alice@example.test"],
                                       ["demo@example.test", "bob@example.test"],
                                       ["team@example.test"], ["carol@other.test"]]):
                msg = message(subject=f"txn {i}", sender=f"s{i}@example.org")
                self.assertEqual(s.sendmail(f"s{i}@example.org", rcpts, msg), {})
                sent.append(msg)
        expect = {"demo@example.test": [0, 2], "alice@example.test": [1, 3],
                  "bob@example.test": [2, 3], "carol@other.test": [4]}
        for rcpt, idx in expect.items():
            got = self.server.wait_mail(rcpt, len(idx))
            bodies = sorted(g.split(b"\n", 2)[0] for g in got)
            self.assertEqual(bodies, sorted(f"Return-Path: <s{i}@example.org>".encode()
                                            for i in idx), rcpt)
            for i in idx:
                self.assertTrue(any(g.endswith(lf(sent[i])) for g in got), (rcpt, i))
        m = self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=quit "
                                 r"messages=5 commands=\d+ errors=0 qids=(\S+)")
        self.assertEqual(len(set(m.group(1).split(","))), 5)
        self.server.wait_queue_empty()


class Timeouts(SmtpAssertions, ServerTest):
    server_args = {"extra_config": "smtp-command-timeout 1s\nsmtp-data-timeout 2s"}

    def test_idle_client_gets_421_4_4_2(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            start = time.monotonic()
            lines = self.reply(r, 421, "4.4.2")
            self.assertGreaterEqual(time.monotonic() - start, 0.5)
            self.assertIn("Timeout", lines[-1])
            self.assertTrue(r.closed())
        self.server.wait_log(r"event=timeout state=rcpt")
        self.assertEqual(self.server.queue_files(), [])

    def test_stalled_data_gets_421_and_nothing_is_delivered(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            r.send("Subject: stalled\r\n\r\nhalf a message\r\n")
            # The data timeout (2s), not the command timeout (1s), applies in DATA.
            start = time.monotonic()
            self.reply(r, 421, "4.4.2")
            self.assertGreaterEqual(time.monotonic() - start, 1.3)
            self.assertTrue(r.closed())
        self.server.wait_log(r"event=timeout state=data")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.server.incoming_files(), [])
        self.assertEqual(self.server.mailbox("demo@example.test"), [])


class Shutdown(SmtpAssertions, ServerTest):
    def test_sigterm_lets_the_transaction_finish_then_421(self):
        msg = message(subject="finished during shutdown")
        cut = len(msg) // 2
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            r.send(msg[:cut])
            pid = self.server.wait_log(r"carteiro/smtpd\[(\d+)\]: info: sid=\w+ qid=\w+ "
                                       r"event=mail ").group(1)
            self.server.proc.send_signal(signal.SIGTERM)
            self.server.wait_log(rf"smtpd\[{pid}\]: info: event=stopping signal=15 sessions=1")
            r.send(msg[cut:] + ".\r\n")
            qid = self.queued_id(self.reply(r, 250, "2.0.0"))
            self.reply(r, 421, "4.3.2")
            self.assertTrue(r.closed())
        self.server.stop()
        self.server.start()
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        self.assertIn(f" id {qid}\n".encode(), got[0])
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_sigterm_closes_idle_sessions_with_421(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.server.proc.send_signal(signal.SIGTERM)
            self.reply(r, 421, "4.3.2")
            self.assertTrue(r.closed())


class ConnectionLimits(SmtpAssertions, ServerTest):
    server_args = {"extra_config": "max-connections-per-ip 2"}

    def test_per_ip_limit(self):
        a = self.server.raw(source="127.0.0.2")
        b = self.server.raw(source="127.0.0.2")
        try:
            self.ehlo(a)
            self.ehlo(b)
            with self.server.raw(greet=False, source="127.0.0.2") as c:
                lines = self.reply(c, 421, "4.7.0")
                self.assertIn("from your address", lines[-1])
                self.assertTrue(c.closed())
            with self.server.raw(source="127.0.0.3") as d:
                self.ehlo(d)
            self.reply(a, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(a.closed())
            self.server.wait_log(r"event=disconnect client=127\.0\.0\.2 reason=quit")
            # The slot is released right after that log line: allow a moment for it.
            deadline = time.monotonic() + 5
            while True:
                with self.server.raw(greet=False, source="127.0.0.2") as e:
                    code, lines = e.reply()
                    if code == 220:
                        self.ehlo(e)
                        break
                self.assertLess(time.monotonic(), deadline, lines)
                time.sleep(0.05)
            self.reply(b, 250, "2.0.0", "NOOP\r\n")
        finally:
            a.close()
            b.close()
        self.server.wait_log(r"client=127\.0\.0\.2 port=\d+ result=refused "
                             r"reason=max_connections_per_ip")


class LongCommands(SmtpAssertions, ServerTest):
    def test_mail_and_rcpt_may_exceed_512_with_extension_parameters(self):
        """RFC 5321 4.5.3.1.4 with RFC 1870/3461/4954: each extension raises the limit."""
        envid = "E" * 100
        auth = "A" * 500
        mail = (f"MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID={envid} "
                f"AUTH={auth}\r\n")
        self.assertGreater(len(mail), 600)
        orcpt = "rfc822;" + "o" * 450 + "@example.org"
        rcpt = f"RCPT TO:<demo@example.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT={orcpt}\r\n"
        self.assertGreater(len(rcpt), 512)
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", mail)
            self.reply(r, 250, "2.1.5", rcpt)
            self.reply(r, 500, "5.5.2", "RCPT TO:<demo@example.test> ORCPT=rfc822;" +
                       "p" * 1100 + "\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            self.reply(r, 250, "2.0.0", message(subject="long params") + ".\r\n")
        self.server.wait_mail("demo@example.test")


class Logging(SmtpAssertions, ServerTest):
    def test_one_message_story_by_queue_id(self):
        msg = message(subject="log story")
        with self.server.smtp(helo="story.example.org") as s:
            s.ehlo()
            s.sendmail("teller@example.org", ["demo@example.test"], msg)
        got = self.server.wait_mail("demo@example.test")
        qid = re.search(rb"ESMTP id ([0-9A-Z]{12})", got[0]).group(1).decode()
        self.server.wait_log(rf"qid={qid} event=delivered")
        self.server.wait_log(rf"qid={qid} event=removed")
        lines = [line for line in self.server.log().splitlines() if f"qid={qid} " in line]
        events = [re.search(r"event=(\w+)", line).group(1) for line in lines]
        self.assertEqual(events, ["mail", "rcpt", "queued", "delivered", "removed"], lines)
        self.assertRegex(lines[0], rf"sid=\w+ qid={qid} event=mail client=127\.0\.0\.1 "
                                   r"helo=story\.example\.org from=<teller@example\.org> ")
        self.assertRegex(lines[1], rf"qid={qid} event=rcpt to=<demo@example\.test> "
                                   r"result=accepted mailbox=<demo@example\.test>")
        size = len(msg.encode())
        self.assertRegex(lines[2], rf"qid={qid} event=queued from=<teller@example\.org> "
                                   rf"nrcpt=1 size={size}$")
        self.assertRegex(lines[3], rf"qid={qid} event=delivered to=<demo@example\.test> "
                                   r"mailbox=\S+/mail/example\.test/demo delay=")
        # Session lines share the sid of the mail line.
        sid = re.search(r"sid=(\w+)", lines[0]).group(1)
        self.assertRegex(self.server.log(), rf"sid={sid} event=connect client=127\.0\.0\.1 "
                                            r"port=\d+ listener=\S+ relay=no")
        self.server.wait_log(rf"sid={sid} event=disconnect client=127\.0\.0\.1 reason=quit "
                             rf"messages=1 commands=\d+ errors=0 qids={qid}")

    def test_rejections_are_logged_with_the_queue_id(self):
        with self.server.raw() as r:
            self.ehlo(r)
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 550, "5.1.1", "RCPT TO:<ghost@example.test>\r\n")
            self.reply(r, 554, "5.7.1", "RCPT TO:<x@elsewhere.test>\r\n")
        m = self.server.wait_log(r"qid=(\w+) event=rcpt to=<ghost@example\.test> "
                                 r"result=rejected reason=unknown_user")
        self.server.wait_log(rf"qid={m.group(1)} event=rcpt to=<x@elsewhere\.test> "
                             r"result=rejected reason=relay_denied")

    def test_client_text_in_log_is_escaped(self):
        with self.server.raw() as r:
            self.ehlo(r)
            # A quoted local part may hold spaces: it must not forge a key=value field.
            self.reply(r, 250, "2.1.0",
                       'MAIL FROM:<"x event=delivered to=<y>"@example.org>\r\n')
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 501, "5.1.7", "MAIL FROM:<bad\x01 event=forged>\r\n")
        self.server.wait_log(r'event=mail .* from=<"\\"x event=delivered to=<y>\\"@example\.org">')
        m = self.server.wait_log(r"event=reject stage=mail reason=syntax arg=(.*)")
        self.assertNotIn("\x01", m.group(0))
        self.assertIn("\\x01", m.group(1))
        self.assertTrue(m.group(1).startswith('"'), m.group(0))


if __name__ == "__main__":
    unittest.main()
