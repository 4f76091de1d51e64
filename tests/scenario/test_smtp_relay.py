"""Relay control: only clients in relay-network may send to other domains, and no address
trick (percent hack, bang path, quoted local part, source route, double '@', address
literal, trailing dot, case) lets any other client relay. A relayed message stays in the
queue for a remote domain and is never delivered locally."""
import os
import socket
import unittest

from harness import DEFAULT_USERS, DEMO, ServerTest, SmtpAssertions, lf, message

RELAY_CLIENT = "127.0.0.1"
OUTSIDER = "127.0.0.2"

# (recipient as written inside RCPT TO:<...>, expected code, enhanced code)
TRICKS = [
    ("user%remote.test@example.test", 550, "5.1.1"),
    ("demo%remote.test@example.test", 550, "5.1.1"),
    ("remote.test!user@example.test", 550, "5.1.1"),
    ("remote.test!demo@example.test", 550, "5.1.1"),
    ('"user@remote.test"@example.test', 550, "5.1.1"),
    ('"demo@remote.test"@example.test', 550, "5.1.1"),
    ("@example.test:user@remote.test", 554, "5.7.1"),
    ("@example.test,@mx.example.test:user@remote.test", 554, "5.7.1"),
    ("user@remote.test@example.test", 501, "5.1.3"),
    ("user@[127.0.0.1]", 554, "5.7.1"),
    ("user@[IPv6:::1]", 554, "5.7.1"),
    ("user@example.test.", 501, "5.1.3"),
    ("user@remote.test.", 501, "5.1.3"),
    ("user@REMOTE.TEST", 554, "5.7.1"),
    ("user@Remote.Test", 554, "5.7.1"),
    ("user@remote.test.example.test", 554, "5.7.1"),
    ("user@example.test.remote.test", 554, "5.7.1"),
    ("user@sub.example.test", 554, "5.7.1"),
    ("user@remote.test\\@example.test", 501, "5.1.3"),
]


class Relay(SmtpAssertions, ServerTest):
    server_args = {"relay_networks": (RELAY_CLIENT + "/32",)}

    def mail_domains(self):
        root = os.path.join(self.server.dir, "mail")
        return sorted(os.listdir(root)) if os.path.isdir(root) else []

    def assert_nothing_relayed(self):
        # A message for a remote domain would stay in the queue: it must be empty.
        self.server.wait_queue_empty()
        self.assertEqual(self.server.incoming_files(), [])
        self.assertNotIn(" result=accepted relay=<", self.server.log())
        self.assertTrue(set(self.mail_domains()) <= {"example.test", "other.test"},
                        self.mail_domains())

    def test_outsider_cannot_relay(self):
        with self.session(OUTSIDER) as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<spammer@example.org>\r\n")
            lines = self.reply(r, 554, "5.7.1", "RCPT TO:<remote@elsewhere.test>\r\n")
            self.assertIn("Relay access denied", lines[-1])
            self.reply(r, 554, "5.5.1", "DATA\r\n")
            # Local recipients are fine from anywhere.
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="outsider local", sender="spammer@example.org")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
        got = self.server.wait_mail(DEMO)
        self.assertIn(b"Received: from client.example.org ([127.0.0.2])", got[0])
        self.assertTrue(got[0].endswith(lf(msg)))
        self.assert_nothing_relayed()
        self.server.wait_log(r"event=connect client=127\.0\.0\.2 port=\d+ \S+ relay=no")
        self.server.wait_log(r"event=rcpt to=<remote@elsewhere\.test> result=rejected "
                             r"reason=relay_denied")

    def test_outsider_with_smtplib(self):
        with self.server.smtp(source=OUTSIDER) as s:
            refused = s.sendmail("a@example.org", ["remote@elsewhere.test", DEMO],
                                 message(subject="smtplib outsider"))
        self.assertEqual(list(refused), ["remote@elsewhere.test"])
        self.assertEqual(refused["remote@elsewhere.test"][0], 554)
        self.assertTrue(refused["remote@elsewhere.test"][1].startswith(b"5.7.1 "))
        self.server.wait_mail(DEMO)
        self.assert_nothing_relayed()

    def test_relay_client_may_relay_and_message_stays_queued(self):
        msg = message(subject="relayed", to="remote@elsewhere.test")
        with self.session(RELAY_CLIENT) as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<inside@example.test>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<remote@elsewhere.test>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<Other@REMOTE.Test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            lines = self.reply(r, 250, "2.0.0", msg + ".\r\n")
            qid = lines[-1].rsplit(" ", 1)[1]
        self.server.wait_log(rf"qid={qid} event=queued from=<inside@example\.test> nrcpt=2 ")
        self.server.wait_log(r"event=connect client=127\.0\.0\.1 port=\d+ \S+ relay=yes")
        self.server.wait_log(rf"qid={qid} event=rcpt to=<remote@elsewhere\.test> "
                             r"result=accepted relay=<remote@elsewhere\.test>")
        listing = self.server.queue_list()
        self.assertRegex(listing, rf"(?m)^{qid} .* remote +<inside@example\.test>$")
        self.assertRegex(listing, r"-> remote@elsewhere\.test \(remote, [a-z]+\)")
        # The domain is lower-cased, the local part kept.
        self.assertRegex(listing, r"-> Other@remote\.test \(remote, [a-z]+\)")
        self.assertEqual(self.server.queue_files(), [qid])
        # Not delivered locally, to nobody.
        self.assertEqual(self.mail_domains(), [])
        self.assertNotRegex(self.server.log(), rf"qid={qid} event=delivered")

    def test_relay_client_mixed_local_and_remote(self):
        msg = message(subject="mixed")
        with self.server.smtp(source=RELAY_CLIENT) as s:
            self.assertEqual(s.sendmail("inside@example.test",
                                        ["remote@elsewhere.test", DEMO], msg), {})
        got = self.server.wait_mail(DEMO)
        self.assertTrue(got[0].endswith(lf(msg)))
        # The Maildir copy appears before its outcome is recorded in the queue file.
        listing = self.server.wait_queue_list(r"-> demo@example\.test \(local, delivered\)")
        self.assertRegex(listing, r"-> remote@elsewhere\.test \(remote, pending\)")
        self.assertEqual(self.mail_domains(), ["example.test"])
        self.assertFalse(os.path.exists(self.server.mailbox_dir("remote@elsewhere.test")))

    def test_relay_tricks_from_outsider(self):
        for rcpt, code, enhanced in TRICKS:
            with self.subTest(rcpt=rcpt), self.session(OUTSIDER) as r:
                self.reply(r, 250, "2.1.0", "MAIL FROM:<trick@example.org>\r\n")
                self.reply(r, code, enhanced, f"RCPT TO:<{rcpt}>\r\n")
                # No recipient was taken.
                self.reply(r, 554, "5.5.1", "DATA\r\n")
                self.reply(r, 250, "2.0.0", "RSET\r\n")
        self.assert_nothing_relayed()
        self.assertEqual(self.server.queue_files(), [])
        for user in DEFAULT_USERS:
            self.assertEqual(self.server.mailbox(user), [], user)

    def test_relay_tricks_with_a_message(self):
        """Each trick next to a good local recipient, and the message sent: only demo gets it,
        nothing stays queued for another domain."""
        n = 0
        for rcpt, code, enhanced in TRICKS:
            with self.subTest(rcpt=rcpt), self.session(OUTSIDER) as r:
                self.reply(r, 250, "2.1.0", "MAIL FROM:<trick@example.org>\r\n")
                self.reply(r, code, enhanced, f"RCPT TO:<{rcpt}>\r\n")
                self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
                self.reply(r, 354, None, "DATA\r\n")
                self.reply(r, 250, "2.0.0", message(subject=f"trick {n}") + ".\r\n")
                n += 1
        self.server.wait_mail(DEMO, n)
        self.assert_nothing_relayed()
        self.assertEqual(len(self.server.mailbox(DEMO)), n)
        for user in DEFAULT_USERS:
            if user != DEMO:
                self.assertEqual(self.server.mailbox(user), [], user)
        for got in self.server.mailbox(DEMO):
            self.assertTrue(got.startswith(b"Return-Path: <trick@example.org>\n"
                                           b"Delivered-To: demo@example.test\n"))
            # Two RCPT commands only when both were accepted; never another recipient.
            self.assertNotIn(b"remote", got.split(b"\n\n", 1)[0].lower())

    def test_tricks_do_not_relay_for_a_relay_client_either(self):
        """From a trusted client the local-domain tricks are still local addresses."""
        for rcpt in ("user%remote.test@example.test", "remote.test!user@example.test",
                     '"user@remote.test"@example.test'):
            with self.subTest(rcpt=rcpt), self.session(RELAY_CLIENT) as r:
                self.reply(r, 250, "2.1.0", "MAIL FROM:<inside@example.test>\r\n")
                self.reply(r, 550, "5.1.1", f"RCPT TO:<{rcpt}>\r\n")
        self.assertNotIn(" result=accepted relay=<", self.server.log())

    def test_queue_list_shows_nothing_remote_after_local_delivery(self):
        with self.server.smtp(source=OUTSIDER) as s:
            s.sendmail("a@example.org", ["remote@elsewhere.test", DEMO],
                       message(subject="queue list"))
        self.server.wait_mail(DEMO)
        self.server.wait_queue_empty()
        p = self.server.carteiro("queue", "list", "-c", self.server.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertTrue(p.stdout.startswith("QUEUE ID "), p.stdout)
        self.assertNotIn("remote", p.stdout)

    def test_source_route_to_a_local_mailbox_is_ignored(self):
        """RFC 5321 4.1.1.3, C: the source route is ignored, the mailbox is what counts."""
        with self.session(OUTSIDER) as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<@elsewhere.test:demo@example.test>\r\n")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="source route")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
        got = self.server.wait_mail(DEMO)
        self.assertTrue(got[0].endswith(lf(msg)))
        self.assert_nothing_relayed()

    def test_relay_network_is_per_address(self):
        """127.0.0.1/32 trusts only 127.0.0.1; the trust is checked per connection."""
        for source, code in ((OUTSIDER, 554), (RELAY_CLIENT, 250), ("127.0.0.3", 554),
                             (RELAY_CLIENT, 250)):
            with self.subTest(source=source), self.session(source) as r:
                self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
                self.reply(r, code, "5.7.1" if code == 554 else "2.1.5",
                           "RCPT TO:<x@elsewhere.test>\r\n")


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback")
class RelayIPv6(ServerTest):
    server_args = {"host": "::1", "relay_networks": ("::1/128",)}

    def test_ipv6_relay_client(self):
        msg = message(subject="ipv6")
        with self.server.smtp() as s:
            self.assertEqual(s.sendmail("a@example.org", ["far@elsewhere.test", DEMO], msg), {})
        got = self.server.wait_mail(DEMO)
        self.assertIn(b"\nReceived: from client.example.org ([IPv6:::1])\n", got[0])
        self.assertTrue(got[0].endswith(lf(msg)))
        self.server.wait_log(r"event=connect client=::1 port=\d+ \S+ relay=yes")
        self.server.wait_queue_list(r"-> far@elsewhere\.test \(remote, pending\)")


if __name__ == "__main__":
    unittest.main()
