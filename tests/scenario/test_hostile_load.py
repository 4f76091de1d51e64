"""Sustained load under AddressSanitizer: hundreds of concurrent clients (asyncio, raw SMTP,
pipelined where RFC 2920 allows) for a while. No sanitizer report, no leak at exit
(LeakSanitizer, checked by harness.Server.cleanup), every message that got 250 delivered
exactly once, the descriptors given back, and memory flat: the resident size of the server's
processes (from /proc), quiet after a round of load and quiet after the next equal one,
differ by a bounded amount.

The default run (make test, CI) is 3 x 2.5 seconds of load with 200 clients; `tests/run.py
--long` adds the minute-long version (4 x 15 s) with 400.
"""
import asyncio
import collections
import os
import random
import sys
import time
import unittest

from harness import DEFAULT_USERS, Server, long_test, message, subject_of, wait_for

# A small ASan quarantine: freed memory held back for use-after-free detection would
# otherwise count as resident and hide the real curve.
ENV = {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0:quarantine_size_mb=8"}
LOCAL = [u for u in DEFAULT_USERS if u.endswith("@example.test")]


class Client:
    """One SMTP client: transactions until the deadline, reconnecting now and then."""

    def __init__(self, tag, n, host, port, deadline, stats, accepted):
        self.tag, self.n, self.host, self.port, self.deadline = tag, n, host, port, deadline
        self.stats, self.accepted = stats, accepted
        self.rng = random.Random(n)

    async def reply(self, reader):
        lines = []
        while True:
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                raise ConnectionError("closed")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), lines

    async def session(self, seq):
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            code, _ = await self.reply(reader)
            if code != 220:
                self.stats[f"greeting {code}"] += 1
                return seq
            writer.write(b"EHLO load%d.example.org\r\n" % self.n)
            await self.reply(reader)
            for _ in range(self.rng.randint(1, 8)):
                if time.monotonic() >= self.deadline:
                    break
                seq += 1
                subject = f"load-{self.tag}-{self.n}-{seq}"
                rcpts = self.rng.sample(LOCAL, self.rng.randint(1, 2))
                # MAIL, RCPT... and DATA in one write (RFC 2920), the content after 354.
                writer.write(b"MAIL FROM:<load@example.org>\r\n" +
                             b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts) +
                             b"DATA\r\n")
                codes = [(await self.reply(reader))[0] for _ in range(len(rcpts) + 2)]
                if codes != [250] * (len(rcpts) + 1) + [354]:
                    self.stats["refused"] += 1
                    writer.write(b"RSET\r\n")
                    await self.reply(reader)
                    continue
                body = "".join(f"{subject} {i} .{'x' * self.rng.randint(0, 200)}\r\n"
                               for i in range(self.rng.choice((3, 30, 300))))
                writer.write(message(subject=subject, body=body).encode().replace(
                    b"\r\n.", b"\r\n..") + b".\r\n")
                code, _ = await self.reply(reader)
                if code == 250:
                    self.accepted[subject] = rcpts
                    self.stats["ok"] += 1
                else:
                    self.stats[f"data {code}"] += 1
                if self.rng.random() < 0.2:
                    writer.write(b"NOOP\r\nRSET\r\n")
                    await self.reply(reader)
                    await self.reply(reader)
            if self.rng.random() < 0.7:
                writer.write(b"QUIT\r\n")
                await self.reply(reader)
        finally:
            writer.close()
        return seq

    async def run(self):
        seq = 0
        while time.monotonic() < self.deadline:
            try:
                seq = await self.session(seq)
            except (OSError, ConnectionError, asyncio.TimeoutError) as e:
                self.stats[f"error {type(e).__name__}"] += 1
                await asyncio.sleep(0.05)


async def load(tag, srv, clients, seconds, stats, accepted, samples):
    deadline = time.monotonic() + seconds
    tasks = [asyncio.create_task(Client(tag, n, srv.host, srv.port, deadline, stats,
                                        accepted).run())
             for n in range(clients)]
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.5)
        samples.append(sum(srv.rss_kb().values()))
    await asyncio.gather(*tasks)


def settled_fd_count(srv, timeout=10):
    """The server's descriptors once every process has opened what it keeps (unchanged for a
    second): the start-up probe's answer can come from one worker while the other, or the
    queue manager, is still opening its directories, and a base taken then made a loaded CI
    run see 6 descriptors "still held" that were all the spool's and the listener's."""
    deadline = time.monotonic() + timeout
    last, since = srv.fd_count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        n = srv.fd_count()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 1:
            break
    return last


class SustainedLoad(unittest.TestCase):
    """Equal rounds of load, each followed by a quiet server (queue drained, clients gone):
    the last must not leave the server bigger than the one before did. Freed memory is reused,
    so the same load reaches about the same peak; memory kept per message or per session would
    show as growth in proportion to the last round's traffic. (The ASan allocator settles
    within some 100,000 messages: a 4-round run of 400 clients grew 13, 9, 4 and 0.5 MiB.)"""

    CLIENTS = 200
    ROUNDS = 3
    SECONDS = 2.5  # per round

    def quiet_rss(self, srv, base_fds, summary):
        """Wait for the queue to drain and the sessions to end; the resident KiB then."""
        self.assertTrue(wait_for(lambda: not srv.queue_files(), timeout=60), summary)
        if not wait_for(lambda: srv.fd_count() <= base_fds + 4, timeout=10):
            # What each process still holds, to tell a stuck session from a cache.
            held = {}
            for pid in srv.pids():
                try:
                    held[pid] = sorted(os.readlink(f"/proc/{pid}/fd/{fd}")
                                       for fd in os.listdir(f"/proc/{pid}/fd"))
                except OSError:
                    pass
            self.fail(f"{srv.fd_count()} descriptors, {base_fds} before; {summary}; {held}")
        time.sleep(0.5)
        return sum(srv.rss_kb().values())

    def run_load(self):
        srv = Server(workers=2, env=ENV,
                     extra_config="max-connections 2000\nmax-connections-per-ip 2000\n"
                                  "smtp-max-errors 1000\n")
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.wait_log(r"event=disconnect client=127\.0\.0\.1 ")  # the start-up probe
        base_fds = settled_fd_count(srv)
        stats, accepted, samples, quiet = collections.Counter(), {}, [], []
        t0 = time.monotonic()
        for tag in "abcdefgh"[:self.ROUNDS]:
            asyncio.run(load(tag, srv, self.CLIENTS, self.SECONDS, stats, accepted, samples))
            quiet.append(self.quiet_rss(srv, base_fds, dict(stats)))
        elapsed = time.monotonic() - t0
        summary = (f"{self.CLIENTS} clients, {self.ROUNDS} x {self.SECONDS}s of load "
                   f"({elapsed:.0f}s in all): {dict(stats)}; "
                   f"{len(accepted) / (self.ROUNDS * self.SECONDS):.0f} messages/s; "
                   f"RSS KiB under load {min(samples)}..{max(samples)}, quiet after each round "
                   f"{quiet}")
        self.assertGreater(stats["ok"], self.CLIENTS, summary)
        self.assertEqual(stats["refused"], 0, summary)
        errors = sum(v for k, v in stats.items() if k.startswith(("error", "data", "greeting")))
        self.assertEqual(errors, 0, summary)
        # Memory flat: at most a little more after the last round than after the one before.
        # Quiet sizes of equal rounds vary under ASan (see the class note), more as the server
        # got faster: at 3,000 messages/s (50,000 a round of the long test) the build before
        # the speed-ups of bench/README items 7-12 varied by -13 to +20 MiB and the one after
        # by up to +28 MiB, while the release build's RSS stays within 0.4 MiB over 160,000
        # messages. A leak of 1 KiB a message still shows as 50 MiB a round.
        self.assertLess(quiet[-1] - quiet[-2], max(32 * 1024, quiet[-2] // 6), summary)
        # Every accepted message delivered exactly once to each of its recipients.
        counts = collections.Counter()
        for rcpt in LOCAL:
            for data in srv.mailbox(rcpt):
                counts[(rcpt, subject_of(data))] += 1
        expected = collections.Counter({(r, s): 1 for s, rs in accepted.items() for r in rs})
        self.assertEqual(counts, expected, summary)
        print(f"  load test: {summary}", file=sys.stderr, flush=True)

    def test_sustained_load(self):
        self.run_load()


class SustainedLoadLong(SustainedLoad):
    CLIENTS = 400
    ROUNDS = 4
    SECONDS = 15

    @long_test
    def test_sustained_load(self):
        self.run_load()


if __name__ == "__main__":
    unittest.main()
