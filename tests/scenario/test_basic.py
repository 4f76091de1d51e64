"""The basic path: a message sent with smtplib lands in the right Maildir with the right headers."""
import email
import os
import re
import unittest

from harness import ServerTest, lf, message


class Delivery(ServerTest):
    def test_smtplib_delivery_to_maildir(self):
        msg = message(subject="hello", body="Line one.\r\n.Leading dot line\r\nLast.\r\n")
        with self.server.smtp() as s:
            s.ehlo()
            refused = s.sendmail("alice@example.org", ["demo@example.test"], msg)
            self.assertEqual(refused, {})
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        data = got[0]
        # Return-Path and Delivered-To first, then our Received, then the message as sent (LF).
        self.assertTrue(data.startswith(b"Return-Path: <alice@example.org>\nDelivered-To: "
                                        b"demo@example.test\nReceived: from client.example.org "
                                        b"([127.0.0.1])\n\tby mx.example.test (carteiro) with "
                                        b"ESMTP id "), data[:300])
        self.assertIn(b"\tfor <demo@example.test>; ", data)
        self.assertTrue(data.endswith(lf(msg)), data)
        parsed = email.message_from_bytes(data)
        self.assertEqual(parsed["Subject"], "hello")
        # The queue id in the Received header is the one logged and in the file name.
        qid = re.search(rb"ESMTP id ([0-9A-Z]{12})", data).group(1).decode()
        self.assertIn(f"Q{qid}R0.", self.server.mailbox_names("demo@example.test")[0])
        self.server.wait_log(rf"qid={qid} event=delivered to=<demo@example.test>")
        self.server.wait_queue_empty()

    def test_maildir_size_fields(self):
        msg = message(subject="sizes")
        with self.server.smtp() as s:
            s.sendmail("alice@example.org", ["demo@example.test"], msg)
        self.server.wait_mail("demo@example.test")
        name = self.server.mailbox_names("demo@example.test")[0]
        path = os.path.join(self.server.mailbox_dir("demo@example.test"), "new", name)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            lines = f.read().count(b"\n")
        m = re.search(r",S=(\d+),W=(\d+)$", name)
        self.assertIsNotNone(m, name)
        self.assertEqual(int(m.group(1)), size)
        self.assertEqual(int(m.group(2)), size + lines)


if __name__ == "__main__":
    unittest.main()
