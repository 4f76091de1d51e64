"""Connection limits: max-connections-per-ip and max-connections, shared by all workers."""
import unittest

from harness import ConnectionsTest, message, wait_count


class PerIpLimit(ConnectionsTest):
    server_args = {"workers": 2, "extra_config": "max-connections-per-ip 3\n"}

    def test_fourth_connection_from_one_address(self):
        srv = self.server
        first = []
        for _ in range(3):
            r = self.connect()
            r.expect(220)
            first.append(r)
        # The 4th from the same address: refused with 421 4.7.0, then closed.
        extra = self.connect()
        code, lines = extra.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[-1].startswith("421 4.7.0"), lines)
        self.assertTrue(extra.closed(5), "the refused connection was not closed")
        srv.wait_log(r"event=connect client=127\.0\.0\.1 port=\d+ result=refused "
                     r"reason=max_connections_per_ip")
        # Another address is not affected.
        other = self.connect(source="127.0.0.2")
        other.expect(220)
        other.expect(250, "EHLO other.example.org\r\n")
        # The three are still fully usable.
        for r in first:
            r.expect(250, "NOOP\r\n")
        # Close one; once the server has seen it go, a new one from 127.0.0.1 gets in.
        first[0].expect(221, "QUIT\r\n")
        first[0].close()
        wait_count(srv, r"event=disconnect client=127\.0\.0\.1 reason=quit", 1)
        again = self.connect()
        again.expect(220)
        # ... and it is the last one allowed again.
        self.assertEqual(self.connect().reply()[0], 421)

    def test_refused_connections_release_nothing(self):
        # Many refused attempts must not leak or steal counts: after them, closing the three
        # allowed connections makes room for three new ones.
        srv = self.server
        held = [self.connect() for _ in range(3)]
        for r in held:
            r.expect(220)
        for _ in range(10):
            r = self.connect()
            self.assertEqual(r.reply()[0], 421)
            r.close()
        for r in held:
            r.expect(221, "QUIT\r\n")
            r.close()
        wait_count(srv, r"event=disconnect client=127\.0\.0\.1 reason=quit", 3)
        fresh = [self.connect() for _ in range(3)]
        for r in fresh:
            r.expect(220)
        self.assertEqual(self.connect().reply()[0], 421)
        # Mail still goes through one of them.
        r = fresh[0]
        r.expect(250, "EHLO fresh.example.org\r\n")
        r.expect(250, "MAIL FROM:<a@example.org>\r\n")
        r.expect(250, "RCPT TO:<demo@example.test>\r\n")
        r.expect(354, "DATA\r\n")
        r.expect(250, message(subject="limits") + ".\r\n")
        srv.wait_mail("demo@example.test")


class TotalLimit(ConnectionsTest):
    server_args = {"workers": 2, "extra_config": "max-connections 4\n"
                                                 "max-connections-per-ip 2\n"}

    def test_fifth_connection_from_any_address(self):
        srv = self.server
        held = []
        for src in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"):
            r = self.connect(src)
            r.expect(220)
            held.append(r)
        for src in ("127.0.0.3", "127.0.0.4"):
            r = self.connect(src)
            code, lines = r.reply()
            self.assertEqual(code, 421, lines)
            self.assertTrue(lines[-1].startswith("421 4.7.0"), lines)
            self.assertTrue(r.closed(5))
        srv.wait_log(r"event=connect client=127\.0\.0\.3 port=\d+ result=refused "
                     r"reason=max_connections\b")
        # Whichever worker holds the connections, the total is shared: closing one of them
        # lets exactly one more in.
        held[2].expect(221, "QUIT\r\n")
        held[2].close()
        wait_count(srv, r"event=disconnect client=127\.0\.0\.2 reason=quit", 1)
        r = self.connect("127.0.0.3")
        r.expect(220)
        self.assertEqual(self.connect("127.0.0.5").reply()[0], 421)


if __name__ == "__main__":
    unittest.main()
