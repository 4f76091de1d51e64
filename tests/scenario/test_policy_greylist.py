"""Greylisting against the real daemon (greylist-delay 2s): the first attempt of a triplet gets
451 4.7.1, a retry before the delay too, a retry after it 250 and the message is delivered; the
triplet is per recipient and per client /24; the state is shared by the workers and survives a
restart; relay-network clients, authenticated users, allow-networks and dnswl-listed clients are
never greylisted; a real client (swaks, then smtplib) gets through on its retry; and a /24 whose
triplets passed greylist-auto-allow times is let in at once."""
import smtplib
import time
import unittest

from harness import PASSWORD
from policy_fixture import DEMO, PolicyAssertions, PolicyWorld, dnsbl_name, message

CONFIG = "greylist yes\ngreylist-delay 2s\nauth-plaintext-loopback yes\n"
ALICE = "alice@example.test"


class Greylisting(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        self.world = PolicyWorld(self, extra_config=CONFIG, relay_networks=("127.0.0.7/32",),
                                 lists={"allow-networks": ["127.0.0.8"]}).start()
        self.server = self.world.server

    def attempt(self, source, rcpts, sender="a@sender.example"):
        """One session: MAIL, each RCPT; the RCPT replies' (code, last line); then QUIT."""
        r = self.client(source)
        self.reply(r, 250, "2.1.0", f"MAIL FROM:<{sender}>\r\n")
        out = []
        for rcpt in rcpts:
            r.send(f"RCPT TO:<{rcpt}>\r\n")
            code, lines = r.reply()
            out.append((code, lines[-1]))
        if any(code == 250 for code, _ in out):
            self.send_data(r, message(sender=sender) + ".\r\n")
        self.reply(r, 221, "2.0.0", "QUIT\r\n")
        return out

    def test_first_attempt_451_then_250_after_the_delay(self):
        t0 = time.monotonic()
        (code, line), = self.attempt("127.0.0.2", [DEMO])
        self.assertEqual(code, 451)
        self.assertRegex(line, r"^451 4\.7\.1 Greylisted: new senders are accepted on a retry; "
                               r"try again in 2 seconds$")
        (code, _), = self.attempt("127.0.0.2", [DEMO])
        if time.monotonic() - t0 < 1.9:
            self.assertEqual(code, 451)  # too early
        time.sleep(max(0, 2.2 - (time.monotonic() - t0)))
        (code, _), = self.attempt("127.0.0.2", [DEMO])
        self.assertEqual(code, 250)
        self.wait_delivered(1)
        self.server.wait_log(r"event=greylist result=passed client=127\.0\.0\.2 "
                             r"from=<a@sender\.example> to=<demo@example\.test> after=[23]s")
        self.server.wait_log(r"event=rcpt to=<demo@example\.test> result=rejected "
                             r"reason=greylisted")
        # Known from now on: at once, from another address of the same /24 too.
        self.assertEqual(self.attempt("127.0.0.99", [DEMO]), [(250, "250 2.1.5 Recipient OK")])

    def test_each_recipient_and_network_is_a_triplet(self):
        self.assertEqual([c for c, _ in self.attempt("127.0.0.2", [DEMO, ALICE])], [451, 451])
        time.sleep(2.2)
        # The retry passes for both; a new recipient, or another /24, starts over.
        got = self.attempt("127.0.0.2", [DEMO, ALICE, "bob@example.test"])
        self.assertEqual([c for c, _ in got], [250, 250, 451])
        self.assertEqual([c for c, _ in self.attempt("127.0.1.2", [DEMO])], [451])
        self.assertEqual([c for c, _ in self.attempt("127.0.0.2", [DEMO], sender="b@x.example")],
                         [451])
        # A greylisted recipient is no client error: many do not end the session.
        r = self.client("127.0.0.3")
        self.reply(r, 250, "2.1.0", "MAIL FROM:<many@sender.example>\r\n")
        for i in range(30):
            self.rcpt(r, f"demo+{i}@example.test", 451, "4.7.1")
        self.reply(r, 250, "2.0.0", "NOOP\r\n")

    def test_unknown_recipient_gets_550_not_451(self):
        (code, _), = self.attempt("127.0.0.2", ["nobody@example.test"])
        self.assertEqual(code, 550)

    def test_state_survives_a_restart(self):
        self.assertEqual([c for c, _ in self.attempt("127.0.0.2", [DEMO, ALICE])], [451, 451])
        time.sleep(2.2)
        self.assertEqual([c for c, _ in self.attempt("127.0.0.2", [DEMO])], [250])
        self.server.restart()
        # The passed triplet is known, the pending one's first attempt remembered.
        self.assertEqual([c for c, _ in self.attempt("127.0.0.2", [DEMO, ALICE])], [250, 250])
        self.wait_delivered(2)

    def test_exempt_clients(self):
        # relay-network
        self.deliver("127.0.0.7")
        # allow-networks
        self.deliver("127.0.0.8")
        # an authenticated user
        with self.server.smtp(source="127.0.0.9") as s:
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.sendmail(ALICE, [DEMO], message(sender=ALICE)), {})
        self.wait_delivered(3)
        self.assertNotIn("reason=greylisted", self.server.log())

    def test_real_clients_get_through_on_retry(self):
        p = self.server.swaks("--from", "s@sender.example", "--to", DEMO, "--quit-after", "RCPT")
        self.assertIn("451 4.7.1 Greylisted", p.stdout + p.stderr)
        time.sleep(2.2)
        with self.server.smtp() as s:
            self.assertEqual(s.sendmail("s@sender.example", [DEMO], message()), {})
        self.wait_delivered(1)


class GreylistAutoAllow(PolicyAssertions, unittest.TestCase):
    def test_a_network_that_passed_is_let_in_at_once(self):
        world = PolicyWorld(self, extra_config=CONFIG + "greylist-auto-allow 2\n").start()
        self.server = world.server
        attempt = Greylisting.attempt.__get__(self)
        self.assertEqual([c for c, _ in attempt("127.0.0.2", [DEMO, ALICE])], [451, 451])
        time.sleep(2.2)
        # Two triplets pass on their retry: the second makes the /24 known.
        self.assertEqual([c for c, _ in attempt("127.0.0.2", [DEMO, ALICE])], [250, 250])
        self.server.wait_log(r"event=greylist result=auto_allowed client=127\.0\.0\.2 passed=2 ")
        # Any sender and recipient from that /24 now passes at once; another /24 waits.
        self.assertEqual([c for c, _ in attempt("127.0.0.55", ["bob@example.test"],
                                                sender="new@other.example")], [250])
        self.assertEqual([c for c, _ in attempt("127.0.1.2", [DEMO])], [451])
        self.wait_delivered(1)
        self.server.wait_mail("bob@example.test")


class GreylistAndDnswl(PolicyAssertions, unittest.TestCase):
    def test_dnswl_listed_client_is_not_greylisted(self):
        records = {"a": [(dnsbl_name("127.0.0.4", "wl.test"), "127.0.10.2")]}
        world = PolicyWorld(self, records, extra_config=CONFIG + "dnswl wl.test\n").start()
        self.server = world.server
        self.deliver("127.0.0.4")
        self.wait_delivered(1)
        r = self.client("127.0.0.5")
        self.reply(r, 250, "2.1.0", "MAIL FROM:<a@b.example>\r\n")
        self.rcpt(r, DEMO, 451, "4.7.1")


if __name__ == "__main__":
    unittest.main()
