"""greet-pause: the greeting of an smtp listener waits; a client that speaks before it (RFC
5321 3.1: the client waits for the greeting), as spam bots do, gets 554 5.5.0 and is closed.
A client that waits is served as usual; relay networks, allow-networks and the submission
listeners are greeted at once; one that leaves during the pause is let go at once."""
import time
import unittest

from harness import DEMO, PASSWORD, ServerTest, SmtpAssertions, message
from policy_fixture import PolicyWorld, elapsed


class GreetPause(SmtpAssertions, ServerTest):
    # 127.0.0.1 (the harness's start-up probe) and 127.0.0.2 are relay networks.
    server_args = {"tls": True, "relay_networks": ("127.0.0.1/32", "127.0.0.2/32"),
                   "extra_config": "greet-pause 2s\n"}

    def test_a_client_that_waits_is_greeted_after_the_pause(self):
        took, s = elapsed(lambda: self.server.smtp(source="127.0.0.3", timeout=10))
        with s:
            self.assertGreaterEqual(took, 1.9)
            s.sendmail("a@example.org", [DEMO], message(subject="patient"))
        self.server.wait_mail(DEMO)

    def test_a_client_that_speaks_first_is_refused(self):
        r = self.server.raw(source="127.0.0.4", greet=False)
        self.addCleanup(r.close)
        r.send("EHLO eager.example\r\nMAIL FROM:<a@example.org>\r\n")
        took, _ = elapsed(lambda: self.reply(r, 554, "5.5.0"))
        self.assertGreaterEqual(took, 1.5)  # at the end of the pause
        self.assertTrue(r.closed())
        self.assertNotIn(b"220 ", r.buf)
        self.server.wait_log(r"event=pregreet client=127\.0\.0\.4 bytes=47 action=reject")
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.4 reason=pregreet messages=0 "
                             r"commands=0 ")

    def test_relay_network_and_submission_are_greeted_at_once(self):
        took, r = elapsed(lambda: self.server.raw(source="127.0.0.2"))
        r.close()
        self.assertLess(took, 1)
        took, s = elapsed(lambda: self.server.submission())
        with s:
            s.login("alice@example.test", PASSWORD)
        self.assertLess(took, 1)

    def test_a_client_that_leaves_during_the_pause_is_let_go(self):
        r = self.server.raw(source="127.0.0.5", greet=False)
        r.close()
        took, _ = elapsed(lambda: self.server.wait_log(
            r"event=disconnect client=127\.0\.0\.5 reason=eof ", timeout=5))
        self.assertLess(took, 1.5)
        self.assertNotRegex(self.server.log(), r"event=pregreet client=127\.0\.0\.5")


class GreetPauseWithDnsLists(unittest.TestCase):
    def test_speaking_while_the_lists_are_asked_counts(self):
        # The lists never answer (dnsbl-timeout 2s holds the greeting); a client that talks
        # meanwhile is refused when they give up, before any pause of its own.
        world = PolicyWorld(self, silent_dns=True,
                            extra_config="dnsbl bl.test\ndnsbl-timeout 2s\ngreet-pause 1s\n",
                            lists={"allow-networks": ["127.0.0.1/32"]})
        world.start()
        r = world.server.raw(source="127.0.0.8", greet=False, timeout=10)
        self.addCleanup(r.close)
        r.send("EHLO early.example\r\n")
        took, line = elapsed(r.line)
        self.assertRegex(line, r"^554 5\.5\.0 ")
        self.assertGreaterEqual(took, 1.8)
        self.assertLess(took, 2.8)  # the lists' wait, not that plus the pause
        world.server.wait_log(r"event=pregreet client=127\.0\.0\.8 bytes=20 action=reject")
        # A patient client waits for both: the lists, then the pause.
        took, r2 = elapsed(lambda: world.server.raw(source="127.0.0.9", timeout=10))
        r2.close()
        self.assertGreaterEqual(took, 2.8)


class GreetPauseAllowList(unittest.TestCase):
    def test_allow_networks_client_is_greeted_at_once(self):
        world = PolicyWorld(self, extra_config="greet-pause 3s\n",
                            lists={"allow-networks": ["127.0.0.1/32", "127.0.0.6/32"]})
        world.start()
        took, r = elapsed(lambda: world.server.raw(source="127.0.0.6"))
        r.close()
        self.assertLess(took, 1)
        took, r = elapsed(lambda: world.server.raw(source="127.0.0.7", timeout=10))
        r.close()
        self.assertGreaterEqual(took, 2.9)


if __name__ == "__main__":
    unittest.main()
