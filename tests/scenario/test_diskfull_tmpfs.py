"""Disk full for real: the spool on a small tmpfs (2 MiB; mounting needs root, as the tests
run here and in CI). A message that does not fit gets a 4xx (451/452 4.3.x) and leaves nothing
behind; the session and the server go on; the queue stays readable (nothing corrupt); once
space returns (a filler file deleted, then the tmpfs remounted bigger) messages that did not
fit before are accepted and delivered byte for byte.

Where mount is not allowed (not root, no CAP_SYS_ADMIN), the test falls back to a file size
limit (RLIMIT_FSIZE) as test_diskfull.py uses, and checks what can be checked that way.
"""
import os
import subprocess
import unittest

from harness import DEMO, Server, SmtpAssertions, lf, message, wait_for


def mount_tmpfs(path, size):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def body_of_size(n, tag):
    line = (tag * 78 + "\r\n")
    return line * (n // len(line))


class TmpfsSpool(SmtpAssertions, unittest.TestCase):
    def setUp(self):
        self.server = Server(workers=1, extra_config="max-message-size 10M\n").prepare()
        self.spool = os.path.join(self.server.dir, "spool")
        os.mkdir(self.spool)
        self.mounted = mount_tmpfs(self.spool, "2m")
        if self.mounted:
            self.addCleanup(subprocess.run, ["umount", "-l", self.spool], capture_output=True)
        else:
            self.server.file_size_limit = 1024 * 1024
        self.addCleanup(self.server.cleanup)  # runs first: the server stops, then umount
        self.server.start()

    def send(self, r, msg, code, enhanced=None):
        self.begin(r, sender="a@example.org")
        self.reply(r, 354, None, "DATA\r\n")
        return self.reply(r, code, enhanced, msg + ".\r\n")

    def refused_for_space(self, r, msg):
        self.begin(r, sender="a@example.org")
        self.reply(r, 354, None, "DATA\r\n")
        r.send(msg + ".\r\n")
        code, lines = r.reply()
        self.assertIn(code, (451, 452), lines)
        self.assertRegex(lines[-1], r"^45[12] 4\.3\.\d ", lines)

    def assert_spool_clean(self):
        srv = self.server
        self.assertTrue(wait_for(lambda: not srv.incoming_files(), 10), srv.incoming_files())
        corrupt = os.path.join(self.spool, "corrupt")
        self.assertEqual(os.listdir(corrupt) if os.path.isdir(corrupt) else [], [])
        self.assertNotIn("queue_file_unreadable", srv.log())

    def test_full_spool_refuses_then_recovers(self):
        srv = self.server
        big = message(subject="big", body=body_of_size(1_200_000, "b"))
        small = message(subject="small")
        if not self.mounted:
            with self.session() as r:
                self.refused_for_space(r, big)
                self.send(r, small, 250, "2.0.0")
            srv.wait_mail(DEMO)
            self.assert_spool_clean()
            srv.wait_log(r"event=spool_write_failed")
            return
        # Leave about 400 KiB free: small messages fit, a 1.2 MB one does not.
        filler = os.path.join(self.spool, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free_bytes(self.spool) - 400 * 1024))
        with self.session() as r:
            self.refused_for_space(r, big)
            # The partial file is removed by an I/O thread just after the 4xx; until then the
            # disk is still full and a new message would get a 4xx too (then be retried).
            self.assertTrue(wait_for(lambda: not srv.incoming_files(), 10), srv.incoming_files())
            # The session goes on; what fits is taken.
            self.send(r, small, 250, "2.0.0")
            # The same again in BDAT.
            self.begin(r, sender="a@example.org")
            data = big.encode()
            r.send(b"BDAT %d LAST\r\n" % len(data) + data)
            code, lines = r.reply()
            self.assertIn(code, (451, 452), lines)
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
        srv.wait_mail(DEMO)
        srv.wait_queue_empty()
        self.assert_spool_clean()
        srv.wait_log(r"event=spool_write_failed")
        # Full to the last byte: even a small message is refused, nothing half-written stays.
        with open(os.path.join(self.spool, "filler2"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        with self.session() as r:
            self.refused_for_space(r, message(subject="no room", body=body_of_size(20000, "n")))
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
        self.assert_spool_clean()
        # Space returns: the big one goes through.
        os.unlink(filler)
        os.unlink(os.path.join(self.spool, "filler2"))
        with self.session() as r:
            self.send(r, big, 250, "2.0.0")
        # And a bigger tmpfs takes a bigger one.
        p = subprocess.run(["mount", "-o", "remount,size=8m", self.spool], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        bigger = message(subject="bigger", body=body_of_size(4_000_000, "c"))
        with self.session() as r:
            self.send(r, bigger, 250, "2.0.0")
        got = srv.wait_mail(DEMO, 3)
        srv.wait_queue_empty()
        self.assert_spool_clean()
        self.assertEqual(len(got), 3)
        for msg in (small, big, bigger):
            self.assertEqual(sum(g.endswith(lf(msg)) for g in got), 1, msg[:80])
        self.assertFalse([g for g in got if b"Subject: no room" in g])


if __name__ == "__main__":
    unittest.main()
