"""Durability with outbound delivery: kill -9 of the whole server at random moments, again and
again, while 8 clients send a stream of messages to local mailboxes and to a remote domain
whose MX is an aiosmtpd peer (outbound_fixture), and while the queue manager delivers them.

Every message carries a unique Subject. At the end (the server restarted once more and its
queue drained):
- a message that got 250 is in each local recipient's Maildir exactly once, and at the remote
  sink at least once;
- a second remote copy is allowed only where the kill came before the remote server's 250 was
  recorded (RFC 1047; every MTA has this window): no server life sends a (message, recipient)
  twice, none sends one already recorded. Duplicates are counted in two kinds: "unrecorded"
  (the queue manager had the 250, its record was not yet durable: the record job's latency,
  at most one a kill on average) and "cut" (the kill came between the remote server taking the
  message and its 250 reaching us: at most one per connection carrying a message);
- a message that got no 250 is delivered nowhere, unless its reply was lost (the end of data
  had reached the server: "uncertain"), and then to all of its recipients or to none.

The default run (make test) kills 40 times in about 15 seconds; `tests/run.py --long` (CI)
adds a 100-round run (CARTEIRO_TEST_SEED repeats the kill times of a run). Every client
reconnects after a kill; deliveries from earlier rounds are cut by later kills too.
"""
import collections
import os
import random
import re
import smtplib
import sys
import threading
import time
import unittest

import test_robust_crash as local_crash
from harness import lf, long_test, message, subject_of, wait_for
from outbound_fixture import OutboundWorld

SENDER = "durable@example.org"
SINK = "127.0.0.2"
RECORDS = {
    "mx": [("example.net", "mx1.example.net", 10)],
    "a": [("mx1.example.net", SINK)],
}
RCPT_SETS = (["demo@example.test"], ["sink@example.net"],
             ["demo@example.test", "sink@example.net"], ["alice@example.test"],
             ["alice@example.test", "other@example.net", "demo@example.test"])
LOCAL = ("demo@example.test", "alice@example.test")
DESTINATION_CONCURRENCY = 20  # the default: connections to the sink at once


class KillNineLocalAndRemote(local_crash.KillNine):
    ROUNDS = 40
    THREADS = 8
    PAUSE = 0.01  # seconds a client waits between messages

    def setUp(self):
        self.seed = int(os.environ.get("CARTEIRO_TEST_SEED", time.time_ns() % 1_000_000))
        self.rng = random.Random(self.seed)
        self.world = OutboundWorld(self, RECORDS, server_args={"workers": 2},
                                   extra_config="retry-schedule 1s\n")
        self.sink = self.world.peer(SINK, "mx1.example.net")
        self.server = self.world.start().server

    def tearDown(self):
        pass  # the world's cleanup (addCleanup) stops the server, the peer and DNS

    def client(self, rnd, t, stop, records, lock, counters):
        n = 0
        while not stop.is_set():
            try:
                s = smtplib.SMTP(self.server.host, self.server.port,
                                 local_hostname=f"c{t}.example.org", timeout=5)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)
                continue
            try:
                s.ehlo()
                while not stop.is_set():
                    n += 1
                    subject = f"mix-r{rnd}-t{t}-n{n}"
                    rcpts = RCPT_SETS[(n + t) % len(RCPT_SETS)]
                    lines = 2000 if n % 9 == 0 else 4
                    body = "".join(f"{subject} line {i:05d}\r\n" for i in range(lines))
                    rec = local_crash.Record(subject, rcpts,
                                             message(subject=subject, body=body, sender=SENDER,
                                                     to=rcpts[0]))
                    with lock:
                        records[subject] = rec
                    self.send_one(s, rec)
                    if rec.status == "ok":
                        with lock:
                            counters[rnd] += 1
                    if self.PAUSE:
                        stop.wait(self.PAUSE)
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                try:
                    s.close()
                except OSError:
                    pass

    def run_rounds(self):
        srv = self.server
        records = {}
        lock = threading.Lock()
        counters = collections.Counter()
        info = f"(seed {self.seed}; CARTEIRO_TEST_SEED={self.seed} repeats the kill times)"
        t_start = time.monotonic()
        for rnd in range(self.ROUNDS):
            if rnd:
                srv.start()
                self.assertEqual(srv.incoming_files(), [], f"round {rnd}: incoming/ not "
                                                           f"emptied at start-up {info}")
            stop = threading.Event()
            threads = [threading.Thread(target=self.client,
                                        args=(rnd, t, stop, records, lock, counters))
                       for t in range(self.THREADS)]
            for th in threads:
                th.start()
            want = self.rng.randint(2, 10)
            deadline = time.monotonic() + 10
            while counters[rnd] < want and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertGreaterEqual(counters[rnd], want, f"round {rnd}: traffic too slow")
            # Deliveries from earlier rounds run meanwhile: the kill hits them too.
            time.sleep(self.rng.uniform(0, 0.3))
            srv.kill9()
            stop.set()
            for th in threads:
                th.join(20)
                self.assertFalse(th.is_alive(), "a client thread hangs")
        srv.start()
        self.assertEqual(srv.incoming_files(), [])
        t_rounds = time.monotonic() - t_start
        # The sink (aiosmtpd, in Python) takes a few hundred messages a second.
        self.assertTrue(wait_for(lambda: not srv.queue_files(), timeout=max(90, self.ROUNDS)),
                        f"queue not drained: {srv.queue_files()[:10]}\n{srv.log()[-3000:]}")
        return records, info, f"{t_rounds:.0f}s of rounds, {time.monotonic() - t_start:.0f}s " \
                              f"with the final delivery"

    def check(self, records, info):
        srv = self.server
        delivered = collections.Counter()
        problems = []
        for rcpt in LOCAL:
            for data in srv.mailbox(rcpt):
                subject = subject_of(data)
                delivered[(rcpt, subject)] += 1
                rec = records.get(subject)
                if rec is None:
                    problems.append(f"{rcpt}: unknown message {subject!r}")
                elif rcpt not in rec.rcpts:
                    problems.append(f"{rcpt}: got {subject}, sent to {rec.rcpts}")
                elif not data.endswith(lf(rec.text)):
                    problems.append(f"{rcpt}: {subject} is damaged ({len(data)} bytes)")
        for env, data in self.sink.messages():
            subject = subject_of(data)
            rec = records.get(subject)
            for rcpt in env["rcpt_tos"]:
                delivered[(rcpt, subject)] += 1
                if rec is None:
                    problems.append(f"sink: unknown message {subject!r}")
                elif rcpt not in rec.rcpts:
                    problems.append(f"sink: {rcpt} got {subject}, sent to {rec.rcpts}")
            if rec is not None and not data.replace(b"\r\n", b"\n").endswith(lf(rec.text)):
                problems.append(f"sink: {subject} is damaged ({len(data)} bytes)")
            if env["mail_from"] != SENDER:
                problems.append(f"sink: {subject} from {env['mail_from']}")

        # A remote 250 is logged (event=attempt ... status=sent) as it arrives, then recorded:
        # within one life of the server no (message, recipient) is ever sent twice; across a
        # kill it may be, if the kill came before the record.
        # And once its queue file is removed (event=removed: every outcome recorded), a
        # message is never sent again.
        sent_in = collections.defaultdict(list)
        removed_in = collections.defaultdict(list)
        lives = re.split(r"carteiro/master\[\d+\]: info: event=started ", srv.log())
        for life, text in enumerate(lives):
            for m in re.finditer(r"qid=(\w+) event=attempt to=<([^>]+)> [^\n]*status=sent",
                                 text):
                sent_in[(m.group(1), m.group(2))].append(life)
            for m in re.finditer(r"qid=(\w+) event=removed ", text):
                removed_in[m.group(1)].append(life)
        self.assertEqual(len(lives), self.ROUNDS + 2)  # the text before the first start, too
        for (qid, rcpt), sent in sent_in.items():
            if len(sent) != len(set(sent)):
                problems.append(f"{qid} sent to {rcpt} twice by one server life: {sent}")
            if removed_in[qid] and min(removed_in[qid]) < max(sent):
                problems.append(f"{qid} sent to {rcpt} in lives {sent}, although removed from "
                                f"the queue in life {min(removed_in[qid])}")

        stats = collections.Counter(rec.status for rec in records.values())
        remote_dups = 0
        uncertain_delivered = 0
        for rec in records.values():
            counts = {r: delivered[(r, rec.subject)] for r in rec.rcpts}
            for r, c in counts.items():
                if c > 1 and r in LOCAL:
                    problems.append(f"{rec.subject} ({rec.status}) delivered {c} times to {r}")
                elif c > 1:
                    remote_dups += c - 1
            if rec.status == "ok":
                if any(c == 0 for c in counts.values()):
                    problems.append(f"{rec.subject} got 250 (qid {rec.qid}) but was delivered "
                                    f"{counts}")
            elif rec.status == "uncertain":
                if len({min(c, 1) for c in counts.values()}) != 1:
                    problems.append(f"{rec.subject} (reply lost) delivered to only some "
                                    f"recipients: {counts}")
                uncertain_delivered += all(counts.values())
            elif any(counts.values()):
                problems.append(f"{rec.subject} ({rec.status}, reply {rec.reply}) delivered "
                                f"{counts}")
        remote_ok = sum(1 for rec in records.values() if rec.status == "ok"
                        and any(r not in LOCAL for r in rec.rcpts))
        # Two kinds of duplicates. "Unrecorded": the queue manager had the remote 250 (and
        # logged it) but the kill came before its record was durable, so a later life sent
        # again; the record job's latency makes this window. "Unseen": the kill came after
        # the remote server took the message and before its 250 reached us (up to one per
        # connection in flight: destination-concurrency); nothing local can shorten that.
        unrecorded = sum(len(sent) - 1 for sent in sent_in.values())
        summary = (f"{len(records)} messages over {self.ROUNDS} kills: {dict(stats)}; "
                   f"{remote_ok} of those with 250 had remote recipients; "
                   f"{uncertain_delivered} uncertain ones delivered; {remote_dups} remote "
                   f"duplicates ({unrecorded} sent again after an unrecorded 250, "
                   f"{remote_dups - unrecorded} after a 250 the kill cut) {info}")
        self.assertFalse(problems, "\n".join(problems[:30]) + "\n" + summary)
        self.assertGreaterEqual(stats["ok"], 2 * self.ROUNDS, summary)
        self.assertGreater(remote_ok, 0, summary)
        # The unrecorded window is the record job's latency (a few ms: it goes to the I/O
        # pool's urgent threads, never behind local deliveries or loads, and a burst is
        # synced by several threads at once): 0-7 such resends in 40 kills here. Records
        # queued behind the ordinary jobs left 96-194 (2.4-4.9 a kill).
        self.assertLessEqual(unrecorded, self.ROUNDS, summary)
        # A cut 250: at most one per connection carrying a message at the kill.
        self.assertLessEqual(remote_dups - unrecorded, DESTINATION_CONCURRENCY * self.ROUNDS,
                             summary)
        self.assertEqual(srv.incoming_files(), [])
        return summary

    def test_kill9_with_local_and_remote_delivery(self):
        records, info, elapsed = self.run_rounds()
        summary = self.check(records, info)
        print(f"  crash test: {summary}; {elapsed}", file=sys.stderr, flush=True)

    # The 5-round local test of the base class is run by test_robust_crash itself.
    test_kill9_during_traffic_loses_and_duplicates_nothing = None


class KillNineLong(KillNineLocalAndRemote):
    """100 kills (about 45 s; the default run's 40 are already twice what the issue asks, this
    one runs in CI beside the minute-long load test). The clients pause between messages: at
    full speed they outrun delivery (local and remote together) by far, and the queue, loaded
    again at every start, would grow to tens of thousands of messages."""
    ROUNDS = 100
    PAUSE = 0.05

    @long_test
    def test_kill9_with_local_and_remote_delivery(self):
        super().test_kill9_with_local_and_remote_delivery()


if __name__ == "__main__":
    unittest.main()
