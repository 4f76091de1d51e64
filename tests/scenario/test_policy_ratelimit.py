"""Rate limits against the real daemon (two workers, so the counts must be shared): connections
per client address (421 4.7.0 at connect), messages per client address (451 4.7.1 at MAIL),
messages and recipients per authenticated user (451 4.7.1 at MAIL and RCPT, whatever address the
user comes from); other clients and relay-network clients are not held back."""
import smtplib
import unittest

from harness import PASSWORD, Raw
from policy_fixture import DEMO, PolicyAssertions, PolicyWorld, message

ALICE = "alice@example.test"


class RateLimits(PolicyAssertions, unittest.TestCase):
    config = ""

    def setUp(self):
        self.world = PolicyWorld(self, extra_config=self.config + "auth-plaintext-loopback yes\n",
                                 relay_networks=("127.0.0.7/32",)).start()
        self.server = self.world.server


class Connections(RateLimits):
    config = "ratelimit-connections 5/1m\n"

    def greeting(self, source):
        r = Raw(self.server.port, self.server.host, timeout=10, source=source)
        self.addCleanup(r.close)
        return r.reply()

    def test_connections_per_client(self):
        # Six connections, spread over the two workers: the sixth is refused by whichever.
        for _ in range(5):
            self.assertEqual(self.greeting("127.0.0.2")[0], 220)
        code, lines = self.greeting("127.0.0.2")
        self.assertEqual(lines, ["421 4.7.0 Too many connections from your address recently, "
                                 "try again later"])
        self.server.wait_log(r"event=ratelimit kind=connections client=127\.0\.0\.2 count=5 "
                             r"limit=5/60s")
        # Others are served; so is a relay-network client, however often.
        self.assertEqual(self.greeting("127.0.0.3")[0], 220)
        for _ in range(8):
            self.assertEqual(self.greeting("127.0.0.7")[0], 220)
        # A real client sees the 421 as a refused connection.
        with self.assertRaises(smtplib.SMTPConnectError) as cm:
            smtplib.SMTP(self.server.host, self.server.port, source_address=("127.0.0.2", 0),
                         timeout=10)
        self.assertEqual(cm.exception.smtp_code, 421)


class Messages(RateLimits):
    config = "ratelimit-messages 3/1h\n"

    def test_messages_per_client(self):
        r = self.client("127.0.0.2")
        for i in range(2):
            self.transaction(r, [DEMO], subject=f"m{i}")
        r2 = self.client("127.0.0.2")  # another connection, maybe another worker
        self.transaction(r2, [DEMO], subject="m2")
        lines = self.reply(r2, 451, "4.7.1", "MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(lines[-1], "451 4.7.1 Too many messages from your address, try again "
                                    "later")
        # The session goes on: the client may QUIT cleanly.
        self.reply(r2, 250, "2.0.0", "NOOP\r\n")
        self.server.wait_log(r"event=reject stage=mail reason=ratelimit")
        self.server.wait_log(r"event=ratelimit kind=messages client=127\.0\.0\.2 count=3 "
                             r"limit=3/3600s")
        self.deliver("127.0.0.3")
        self.wait_delivered(4)


class UserLimits(RateLimits):
    config = "ratelimit-user-messages 2/1h\nratelimit-user-recipients 4/1h\n"

    def login(self, source):
        s = self.server.smtp(source=source)
        self.addCleanup(s.close)
        s.login(ALICE, PASSWORD)
        return s

    def test_messages_per_user_from_any_address(self):
        self.assertEqual(self.login("127.0.0.2").sendmail(ALICE, [DEMO], message()), {})
        self.assertEqual(self.login("127.0.0.3").sendmail(ALICE, [DEMO], message()), {})
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            self.login("127.0.0.4").sendmail(ALICE, [DEMO], message())
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertIn(b"Too many messages from this account", cm.exception.smtp_error)
        self.server.wait_log(r"event=ratelimit kind=user_messages client=127\.0\.0\.4 "
                             r"user=alice@example\.test count=2 limit=2/3600s")
        # Another user is not held back; nor is the client address.
        with self.server.smtp(source="127.0.0.4") as s:
            s.login("bob@example.test", PASSWORD)
            self.assertEqual(s.sendmail("bob@example.test", [DEMO], message()), {})
        self.wait_delivered(3)

    def test_recipients_per_user(self):
        s = self.login("127.0.0.2")
        refused = s.sendmail(ALICE, [DEMO, "bob@example.test", "carol@other.test"], message())
        self.assertEqual(refused, {})
        s2 = self.login("127.0.0.3")
        s2.mail(ALICE)
        self.assertEqual(s2.rcpt(DEMO)[0], 250)
        code, text = s2.rcpt("bob@example.test")
        self.assertEqual((code, text), (451, b"4.7.1 Too many recipients from this account, "
                                             b"try again later"))
        self.server.wait_log(r"event=rcpt to=<bob@example\.test> result=rejected "
                             r"reason=ratelimit")
        self.server.wait_log(r"event=ratelimit kind=user_recipients .*user=alice@example\.test "
                             r"count=4 limit=4/3600s")


if __name__ == "__main__":
    unittest.main()
