"""Disk full (a file size limit stands in for it): 451 4.3.0, nothing partial left, service goes on."""
import unittest

from harness import ServerTest, message


class DiskFull(ServerTest):
    # 2 MiB per file: the log stays under it, a 3 MiB message does not fit.
    server_args = {"file_size_limit": 2 * 1024 * 1024, "extra_config": "max-message-size 10M"}

    def test_write_error_is_a_temporary_failure(self):
        big = message(subject="big", body=("y" * 990 + "\r\n") * 3200)
        with self.server.raw() as r:
            r.expect(250, "EHLO client.example.org\r\n")
            r.expect(250, "MAIL FROM:<alice@example.org>\r\n")
            r.expect(250, "RCPT TO:<demo@example.test>\r\n")
            r.expect(354, "DATA\r\n")
            r.send(big + ".\r\n")
            lines = r.expect(451)
            self.assertIn("4.3.0", lines[0])
            # The session goes on: a small message is accepted and delivered.
            r.expect(250, "MAIL FROM:<alice@example.org>\r\n")
            r.expect(250, "RCPT TO:<demo@example.test>\r\n")
            r.expect(354, "DATA\r\n")
            r.send(message(subject="small") + ".\r\n")
            r.expect(250)
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        self.assertIn(b"Subject: small", got[0])
        self.assertEqual(self.server.incoming_files(), [])
        self.server.wait_queue_empty()
        self.server.wait_log(r"event=spool_write_failed")


if __name__ == "__main__":
    unittest.main()
