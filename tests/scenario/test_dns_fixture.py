"""The DNS fixture (dnsserver.py) answers as the outbound tests expect: MX with preferences,
A and AAAA, TXT, CNAME, null MX, NODATA for a name without the type asked, NXDOMAIN for an
unknown name under the test zone, REFUSED outside it; and it stops cleanly."""
import shutil
import tempfile
import unittest

from dnsserver import DnsServer

RECORDS = {
    "mx": [("example.test", "mx1.example.test", 10), ("example.test", "mx2.example.test", 20)],
    "a": [("mx1.example.test", "127.0.0.2"), ("mx2.example.test", "127.0.0.3"),
          ("mx2.example.test", "127.0.0.4")],
    "aaaa": [("mx1.example.test", "::1")],
    "txt": [("example.test", 'v=spf1 ip4:127.0.0.0/8 "quoted", -all')],
    "cname": [("alias.test", "mx1.example.test")],
    "nullmx": ["nomail.test"],
}


class DnsFixture(unittest.TestCase):
    # Per test, not per class: tests/run.py runs each case on its own (no setUpClass).
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="carteiro-dns-")
        self.dns = DnsServer(self.dir, RECORDS)
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.addCleanup(self.dns.stop)
        self.dns.start()

    def test_server_text(self):
        self.assertEqual(self.dns.server, f"127.0.0.1:{self.dns.port}")

    def test_mx(self):
        rcode, answers = self.dns.query("example.test", "MX")
        self.assertEqual(rcode, "NOERROR")
        self.assertEqual(sorted(v for t, v in answers if t == "MX"),
                         [(10, "mx1.example.test"), (20, "mx2.example.test")])

    def test_addresses(self):
        self.assertEqual(self.dns.query("mx1.example.test", "A"), ("NOERROR", [("A", "127.0.0.2")]))
        self.assertEqual(self.dns.query("mx1.example.test", "AAAA"),
                         ("NOERROR", [("AAAA", "::1")]))
        rcode, answers = self.dns.query("mx2.example.test", "A")
        self.assertEqual(sorted(v for _, v in answers), ["127.0.0.3", "127.0.0.4"])

    def test_txt_and_cname(self):
        self.assertEqual(self.dns.query("example.test", "TXT"),
                         ("NOERROR", [("TXT", 'v=spf1 ip4:127.0.0.0/8 "quoted", -all')]))
        rcode, answers = self.dns.query("alias.test", "A")
        self.assertEqual(rcode, "NOERROR")
        self.assertIn(("CNAME", "mx1.example.test"), answers)
        self.assertIn(("A", "127.0.0.2"), answers)

    def test_null_mx(self):
        self.assertEqual(self.dns.query("nomail.test", "MX"), ("NOERROR", [("MX", (0, "."))]))

    def test_nodata_nxdomain_refused(self):
        self.assertEqual(self.dns.query("mx2.example.test", "MX"), ("NOERROR", []))
        self.assertEqual(self.dns.query("example.test", "A"), ("NOERROR", []))
        self.assertEqual(self.dns.query("unknown.test", "MX"), ("NXDOMAIN", []))
        self.assertEqual(self.dns.query("unknown.example.test", "A"), ("NXDOMAIN", []))
        self.assertEqual(self.dns.query("example.org", "A")[0], "REFUSED")

    def test_query_log(self):
        self.dns.query("logged.test", "MX")
        self.assertIn("logged.test", self.dns.log())


class DnsFixtureLifecycle(unittest.TestCase):
    def test_context_manager_stops(self):
        d = tempfile.mkdtemp(prefix="carteiro-dns-")
        try:
            with DnsServer(d, {"a": [("h.test", "127.0.0.9")]}) as dns:
                proc = dns.proc
                self.assertEqual(dns.query("h.test", "A"), ("NOERROR", [("A", "127.0.0.9")]))
            self.assertIsNotNone(proc.poll())
            self.assertIsNone(dns.proc)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_records_refused(self):
        with self.assertRaises(ValueError):
            DnsServer("/nonexistent", {"srv": []})
        with self.assertRaises(ValueError):
            DnsServer("/nonexistent", {"a": [("bad,name.test", "127.0.0.1")]})._config_lines()


if __name__ == "__main__":
    unittest.main()
