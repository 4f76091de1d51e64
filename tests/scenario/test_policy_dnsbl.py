"""DNS lists against the real daemon, with dnsmasq serving the lists: a listed client is refused
at RCPT with 554 5.7.1 naming the list and its TXT reason, an unlisted one is served, IPv6
clients are asked by nibbles, the lists' error answers list no one, a dnswl exempts, rhsbl
refuses by the MAIL FROM and the HELO domain, relay-network clients and authenticated users are
not refused, and a list that does not answer fails open after dnsbl-timeout."""
import smtplib
import time
import unittest

from harness import PASSWORD, Raw, free_port
from policy_fixture import DEMO, PolicyAssertions, PolicyWorld, dnsbl_name, elapsed, message

REASON = "Listed by bl.test: see http://bl.test/lookup?ip=127.0.0.2"

RECORDS = {
    "a": [
        (dnsbl_name("127.0.0.2", "bl.test"), "127.0.0.2"),
        (dnsbl_name("127.0.0.3", "bl.test"), "127.0.0.3"),        # listed, no TXT
        (dnsbl_name("127.0.0.4", "bl.test"), "127.0.0.2"),        # listed, but on the dnswl
        (dnsbl_name("127.0.0.4", "wl.test"), "127.0.10.2"),
        (dnsbl_name("127.0.0.5", "bl.test"), "127.255.255.254"),  # "public resolver" error
        (dnsbl_name("127.0.0.6", "bl.test"), "127.0.0.2"),        # listed, in relay-network
        (dnsbl_name("127.0.0.8", "bl.test"), "127.0.0.2"),        # listed, user authenticates
        ("spam.example.dbl.test", "127.0.1.2"),
        ("bad-helo.example.dbl.test", "127.0.1.2"),
        (dnsbl_name("::1", "bl.test"), "127.0.0.2"),
    ],
    "txt": [
        (dnsbl_name("127.0.0.2", "bl.test"), REASON),
        (dnsbl_name("127.0.0.4", "bl.test"), "listed, but allowed"),
        ("spam.example.dbl.test", "spam domain: https://dbl.test/spam.example"),
        ("bad-helo.example.dbl.test", "bad HELO"),
        (dnsbl_name("::1", "bl.test"), "IPv6 listed"),
    ],
}

CONFIG = """dnsbl bl.test
dnswl wl.test 127.0.[0..255].[0..3]
rhsbl dbl.test
dnsbl-timeout 3s
auth-plaintext-loopback yes
"""


class DnsLists(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        self.world = PolicyWorld(self, RECORDS, extra_config=CONFIG,
                                 relay_networks=("127.0.0.6/32",)).start()
        self.server = self.world.server

    def test_listed_client_refused_with_the_lists_reason(self):
        last = self.refused_at_rcpt("127.0.0.2", 554, "5.7.1")
        self.assertEqual(last, "554 5.7.1 Service unavailable; client host [127.0.0.2] blocked "
                               f"using bl.test; {REASON}")
        self.server.wait_log(r"event=dnsbl client=127\.0\.0\.2 result=listed zone=bl\.test "
                             r"answer=127\.0\.0\.2 reason=")
        self.server.wait_log(r"event=rcpt to=<demo@example\.test> result=rejected reason=dnsbl")
        # A real client sees the same: smtplib's sendmail fails for the recipient.
        with self.server.smtp(source="127.0.0.2") as s:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                s.sendmail("alice@example.org", [DEMO], message())
        code, text = cm.exception.recipients[DEMO]
        self.assertEqual(code, 554)
        self.assertIn(b"blocked using bl.test", text)
        self.assertEqual(self.server.mailbox(DEMO), [])

    def test_listed_without_reason_and_pipelined(self):
        r = self.client("127.0.0.3")
        # Every reply in order, though the session checked the client before the greeting.
        r.send(f"MAIL FROM:<a@example.org>\r\nRCPT TO:<{DEMO}>\r\nRCPT TO:<bob@example.test>\r\n"
               "DATA\r\nQUIT\r\n")
        self.reply(r, 250, "2.1.0")
        line = self.reply(r, 554, "5.7.1")[-1]
        self.assertEqual(line, "554 5.7.1 Service unavailable; client host [127.0.0.3] blocked "
                               "using bl.test")
        self.reply(r, 554, "5.7.1")
        self.reply(r, 554, "5.5.1")
        self.reply(r, 221, "2.0.0")

    def test_refused_client_learns_nothing_about_recipients(self):
        self.refused_at_rcpt("127.0.0.2", 554, "5.7.1", rcpt="nobody@example.test")

    def test_unlisted_client_is_served(self):
        self.deliver("127.0.0.9")
        self.wait_delivered(1)
        self.assertNotRegex(self.server.log(), r"client=127\.0\.0\.9 result=listed")

    def test_error_answer_lists_no_one(self):
        self.deliver("127.0.0.5")
        self.server.wait_log(r"event=dnsbl_error zone=bl\.test answer=127\.255\.255\.254")

    def test_dnswl_exempts_from_the_blocklist(self):
        self.deliver("127.0.0.4", sender="someone@spam.example")
        self.server.wait_log(r"event=dnsbl client=127\.0\.0\.4 result=allowed zone=wl\.test "
                             r"answer=127\.0\.10\.2")
        self.wait_delivered(1)
        # The rhsbl is not asked for an allowed client.
        self.assertNotIn("query[A] spam.example.dbl.test", self.world.dns.log())

    def test_relay_network_client_is_not_checked(self):
        self.deliver("127.0.0.6")
        self.wait_delivered(1)
        self.assertNotIn(dnsbl_name("127.0.0.6", "bl.test"), self.world.dns.log())

    def test_authenticated_user_from_a_listed_address_may_send(self):
        with self.server.smtp(source="127.0.0.8") as s:
            s.login("alice@example.test", PASSWORD)
            refused = s.sendmail("alice@example.test", [DEMO, "someone@remote.test"],
                                 message(sender="alice@example.test"))
        self.assertEqual(refused, {})
        self.wait_delivered(1)
        self.server.wait_log(r"event=dnsbl client=127\.0\.0\.8 result=listed")

    def test_rhsbl_refuses_by_sender_domain(self):
        last = self.refused_at_rcpt("127.0.0.9", 554, "5.7.1", sender="x@spam.example")
        self.assertEqual(last, "554 5.7.1 Service unavailable; sender domain listed by dbl.test; "
                               "spam domain: https://dbl.test/spam.example")
        self.server.wait_log(r"event=rhsbl client=127\.0\.0\.9 result=listed zone=dbl\.test "
                             r"answer=127\.0\.1\.2 .* what=sender domain=spam\.example")
        # The next transaction of the session, from another sender, is served.
        r = self.client("127.0.0.9")
        self.reply(r, 250, "2.1.0", "MAIL FROM:<x@spam.example>\r\n")
        self.rcpt(r, DEMO, 554, "5.7.1")
        self.reply(r, 250, "2.0.0", "RSET\r\n")
        self.transaction(r, [DEMO], sender="x@good.example")
        self.wait_delivered(1)

    def test_rhsbl_refuses_by_helo_name(self):
        last = self.refused_at_rcpt("127.0.0.9", 554, "5.7.1", helo="Bad-Helo.Example")
        self.assertEqual(last, "554 5.7.1 Service unavailable; HELO name listed by dbl.test; "
                               "bad HELO")
        self.server.wait_log(r"what=helo domain=Bad-Helo\.Example")
        # A literal HELO is not asked about.
        self.deliver("127.0.0.9", helo="[127.0.0.9]")

    def test_null_sender_checks_only_the_helo(self):
        r = self.client("127.0.0.9")
        self.transaction(r, [DEMO], sender="")
        self.wait_delivered(1)


class DnsListsIpv6(PolicyAssertions, unittest.TestCase):
    def test_ipv6_client_is_asked_by_nibbles(self):
        world = PolicyWorld(self, RECORDS, extra_config="dnsbl bl.test\n", host="::1").start()
        self.server = world.server
        last = self.refused_at_rcpt("::1", 554, "5.7.1")
        self.assertEqual(last, "554 5.7.1 Service unavailable; client host [::1] blocked using "
                               "bl.test; IPv6 listed")
        self.assertIn("query[A] " + dnsbl_name("::1", "bl.test"), world.dns.log())


class DnsListsImplicitTls(PolicyAssertions, unittest.TestCase):
    def test_implicit_tls_listener_refuses_a_listed_client(self):
        port = free_port()
        world = PolicyWorld(self, RECORDS, tls=True,
                            extra_config=f"dnsbl bl.test\nlisten smtp 127.0.0.1:{port} "
                                         "implicit-tls\n").start()
        self.server = world.server
        r = Raw(port, "127.0.0.1", timeout=10, source="127.0.0.2").starttls()
        self.addCleanup(r.close)
        self.reply(r, 220)
        self.ehlo(r)
        self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
        self.assertIn("blocked using bl.test", self.rcpt(r, DEMO, 554, "5.7.1")[-1])
        # The submission port (AUTH required) does not ask the lists at all.
        with self.server.smtps() as s:
            s.noop()
        self.assertEqual(world.dns.log().count("query[A] " + dnsbl_name("127.0.0.1", "bl.test")),
                         1)  # the start-up probe on the smtp port only


class DnsListTimeout(PolicyAssertions, unittest.TestCase):
    def test_a_list_that_never_answers_fails_open(self):
        world = PolicyWorld(self, silent_dns=True,
                            extra_config="dnsbl bl.test\nrhsbl dbl.test\ndnsbl-timeout 1s\n")
        world.start()
        self.server = world.server
        took, r = elapsed(lambda: self.server.raw(source="127.0.0.2", timeout=15))
        self.addCleanup(r.close)
        # The greeting waited for the list, then came without it.
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5)
        self.ehlo(r)
        took, _ = elapsed(lambda: self.reply(r, 250, "2.1.0", "MAIL FROM:<a@spam.example>\r\n"))
        self.assertGreaterEqual(took, 0.9)
        self.rcpt(r, DEMO)
        self.send_data(r, message() + ".\r\n")
        self.server.wait_mail(DEMO)
        self.server.wait_log(r"event=dnsbl client=127\.0\.0\.2 result=timeout .*timeouts=1 "
                             r"errors=0 timed_out=bl\.test")
        self.server.wait_log(r"event=rhsbl client=127\.0\.0\.2 result=timeout")
        self.assertGreater(world.silent.queries(), 0)

    def test_implicit_tls_handshake_waits_for_the_lists(self):
        port = free_port()
        world = PolicyWorld(self, silent_dns=True, tls=True,
                            extra_config=f"dnsbl bl.test\ndnsbl-timeout 1s\n"
                                         f"listen smtp 127.0.0.1:{port} implicit-tls\n")
        world.start()
        self.server = world.server

        def greeted():
            r = Raw(port, "127.0.0.1", timeout=10, source="127.0.0.2").starttls()
            self.addCleanup(r.close)
            return self.reply(r, 220)
        took, _ = elapsed(greeted)
        self.assertGreaterEqual(took, 0.9)
        self.server.wait_log(r"event=dnsbl client=127\.0\.0\.2 result=timeout")

    def test_client_that_leaves_during_the_lookup(self):
        world = PolicyWorld(self, silent_dns=True,
                            extra_config="dnsbl bl.test\ndnsbl-timeout 8s\n"
                                         "max-connections-per-ip 1\n",
                            # the harness's start-up probe is not held 8 s
                            lists={"allow-networks": ["127.0.0.1/32"]})
        world.start()
        self.server = world.server
        r = self.server.raw(source="127.0.0.3", greet=False)
        r.send("EHLO early.example\r\n")  # before the greeting; then gone
        r.close()
        # The session ends at once, not when the lookup gives up (8 s): its slot is free
        # for the next connection from the address, which waits for its own lookup.
        took, _ = elapsed(lambda: self.server.wait_log(
            r"event=disconnect client=127\.0\.0\.3 reason=eof ", timeout=10))
        self.assertLess(took, 3)
        self.assertNotRegex(self.server.log(), r"event=dnsbl client=127\.0\.0\.3 result=timeout")
        r = self.server.raw(source="127.0.0.3", greet=False)
        self.addCleanup(r.close)
        r.send("QUIT\r\n")
        took, _ = elapsed(lambda: self.reply(r, 220))
        self.assertGreater(took, 5)  # the list's timeout, not a 421 for the slot
        self.reply(r, 221)


if __name__ == "__main__":
    unittest.main()
