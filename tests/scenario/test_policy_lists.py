"""Local lists against the real daemon: block-networks (IPv4 and IPv6, Spamhaus DROP's format),
allow-networks as the exception, block-senders in its three forms, every file re-read on SIGHUP
by the master and every worker (a broken file keeps the previous table, and a worker started
after the reload gets the new one), and `carteiro check` reporting a bad line."""
import os
import signal
import time
import unittest

from harness import BINARY, children, wait_for
from policy_fixture import DEMO, PolicyAssertions, PolicyWorld

LISTS = {
    "block-networks": ["; Spamhaus DROP style", "127.0.0.2/32 ; SBL1", "127.0.1.0/24 # a net",
                       "2001:db8::/32"],
    "allow-networks": ["127.0.1.5"],
    "block-senders": ["spammer@example.org", "@exact.example", "rotating.example"],
}


class LocalLists(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        self.world = PolicyWorld(self, lists=LISTS).start()
        self.server = self.world.server

    def test_block_networks(self):
        last = self.refused_at_rcpt("127.0.0.2", 554, "5.7.1")
        self.assertEqual(last, "554 5.7.1 Service unavailable; client host [127.0.0.2] refused "
                               "by local policy")
        self.refused_at_rcpt("127.0.1.77", 554, "5.7.1")
        self.server.wait_log(r"event=policy client=127\.0\.0\.2 result=blocked "
                             r"list=block-networks")
        self.server.wait_log(r"reason=block_networks")
        self.deliver("127.0.0.3")
        self.wait_delivered(1)

    def test_allow_networks_is_the_exception(self):
        self.deliver("127.0.1.5", sender="friend@example.org")
        self.server.wait_log(r"event=policy client=127\.0\.1\.5 result=allowed "
                             r"list=allow-networks")
        self.refused_at_rcpt("127.0.1.6", 554, "5.7.1")
        self.wait_delivered(1)

    def test_block_senders_three_forms(self):
        for sender in ("spammer@example.org", "Spammer@EXAMPLE.org", "x@exact.example",
                       "x@rotating.example", "x@a.b.rotating.example"):
            last = self.refused_at_rcpt("127.0.0.3", 554, "5.7.1", sender=sender)
            self.assertEqual(last, "554 5.7.1 Service unavailable; sender address refused by "
                                   "local policy")
        self.server.wait_log(r"result=blocked list=block-senders from=<x@a\.b\.rotating\.example>")
        # Not the same address, not a subdomain of an @domain entry, not the null sender.
        self.deliver("127.0.0.3", sender="other@example.org")
        self.deliver("127.0.0.3", sender="x@sub.exact.example")
        self.deliver("127.0.0.3", sender="")
        self.wait_delivered(3)

    def test_block_senders_applies_to_allowed_clients(self):
        self.refused_at_rcpt("127.0.1.5", 554, "5.7.1", sender="spammer@example.org")

    def test_sighup_rereads_every_file(self):
        self.world.write_list("block-networks", ["127.0.0.3"])
        self.world.write_list("block-senders", ["newspam.example"])
        self.world.reload()
        self.assertEqual(self.server.log().count("what=policy_lists result=ok "
                                                 "block_networks=1 allow_networks=1 "
                                                 "block_senders=1"), 3)
        # Each worker has the new tables: several sessions, so both workers serve some.
        for _ in range(4):
            self.deliver("127.0.0.2")
            self.refused_at_rcpt("127.0.0.3", 554, "5.7.1")
            self.refused_at_rcpt("127.0.0.4", 554, "5.7.1", sender="a@newspam.example")
        self.wait_delivered(4)

    def test_broken_file_keeps_the_previous_tables(self):
        self.world.write_list("block-networks", ["127.0.0.3", "not-a-network"])
        self.world.reload()
        self.server.wait_log(r"event=config_error file=\S+block-networks\.list line=2 "
                             r"error=\"bad network 'not-a-network'")
        self.assertEqual(self.server.log().count("what=policy_lists result=failed "
                                                 "keeping=previous"), 3)
        for _ in range(3):
            self.refused_at_rcpt("127.0.0.2", 554, "5.7.1")
            self.deliver("127.0.0.3")

    def test_a_restarted_worker_gets_the_reloaded_tables(self):
        self.world.write_list("block-networks", ["127.0.0.3"])
        self.world.reload()
        workers = [p for p in children(self.server.proc.pid)]
        before = self.server.log().count("event=started worker=")
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)  # the queue manager too: restarted alike
            except ProcessLookupError:
                pass
        self.assertTrue(wait_for(lambda: self.server.log().count("event=started worker=")
                                 >= before + 2, timeout=20), self.server.log()[-2000:])
        for _ in range(3):
            self.deliver("127.0.0.2")
            self.refused_at_rcpt("127.0.0.3", 554, "5.7.1")


class ReloadStorm(PolicyAssertions, unittest.TestCase):
    def test_sighup_while_children_start_kills_none(self):
        """SIGHUPs (reloads) keep coming while a worker is being restarted: the new worker
        must not die of one before it has installed its handler (regression)."""
        world = PolicyWorld(self, lists={"block-networks": ["127.0.0.2"]}).start()
        self.server = world.server
        workers = [p for p in children(self.server.proc.pid)]
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.5  # past the master's 1 s restart delay
        while time.monotonic() < deadline:
            self.server.reload()
            time.sleep(0.003)
        self.assertTrue(wait_for(lambda: self.server.log().count("info: event=started worker=")
                                 >= 4, timeout=20), self.server.log()[-2000:])
        time.sleep(0.5)
        self.assertNotRegex(self.server.log(), r"event=child_died .* signal=1 ")
        self.refused_at_rcpt("127.0.0.2", 554, "5.7.1")
        self.deliver("127.0.0.3")


class LocalListsIpv6(PolicyAssertions, unittest.TestCase):
    def test_ipv6_network(self):
        world = PolicyWorld(self, lists={"block-networks": ["::1/128"]}, host="::1").start()
        self.server = world.server
        self.refused_at_rcpt("::1", 554, "5.7.1")


class CheckCommand(unittest.TestCase):
    def test_check_reports_bad_list_lines(self):
        world = PolicyWorld(self, lists={"block-networks": ["192.0.2.0/24", "192.0.2.0/40"],
                                         "block-senders": ["ok@example.org", "bad..example"]})
        p = world.server.carteiro("check", "-c", world.server.config_path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(world.path("block-networks") + ":2: bad network '192.0.2.0/40'", p.stderr)
        self.assertIn(world.path("block-senders") + ":2: bad entry 'bad..example'", p.stderr)
        world.write_list("block-networks", ["192.0.2.0/24"])
        world.write_list("block-senders", ["ok@example.org"])
        p = world.server.carteiro("check", "-c", world.server.config_path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
