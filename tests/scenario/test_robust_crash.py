"""Durability: kill -9 of the whole server in the middle of traffic, and start-up recovery.

The promise (queue_store.c, queue_manager.c): a 250 to the end of the data means the message is
in queue/ and will be delivered exactly once whatever happens after; a message that got no 250
is not delivered, except one whose end of data reached the server while the reply was lost
(RFC 5321 6.1 lets the client resend it: a possible duplicate, never a loss).
"""
import collections
import os
import random
import re
import shutil
import signal
import smtplib
import threading
import time
import unittest

from harness import Raw, ServerTest, lf, message, subject_of, wait_for

SENDER = "durable@example.org"
RCPT_SETS = (["demo@example.test"], ["alice@example.test"],
             ["demo@example.test", "alice@example.test"])
# Every 4th message: from a local user who asks NOTIFY=SUCCESS, so that its success report
# (a notice written with the recipient's status, queue_manager.c) is killed in flight too.
REPORT_SENDER = "carol@other.test"
REPORT_RCPTS = ["bob@example.test"]


class Record:
    """One message a client tried to send, and how far it got."""

    def __init__(self, subject, rcpts, text, sender=SENDER, notify=None):
        self.subject = subject
        self.rcpts = rcpts
        self.text = text
        self.sender = sender
        self.notify = notify  # the RCPT NOTIFY= value, or None
        self.status = "unsent"  # unsent | refused | uncertain | ok
        self.qid = None
        self.reply = None


class KillNine(ServerTest):
    ROUNDS = 5
    THREADS = 4
    server_args = {"workers": 2}

    def setUp(self):
        super().setUp()
        self.seed = int(os.environ.get("CARTEIRO_TEST_SEED", time.time_ns() % 1_000_000))
        self.rng = random.Random(self.seed)

    # --- the clients --------------------------------------------------------------------
    def send_one(self, s, rec):
        code, resp = s.mail(rec.sender)
        if code != 250:
            rec.status, rec.reply = "refused", (code, resp)
            s.rset()
            return
        for r in rec.rcpts:
            code, resp = s.rcpt(r, [f"NOTIFY={rec.notify}"] if rec.notify else [])
            if code != 250:
                rec.status, rec.reply = "refused", (code, resp)
                s.rset()
                return
        code, resp = s.docmd("DATA")
        if code != 354:
            rec.status, rec.reply = "refused", (code, resp)
            s.rset()
            return
        # From here on the end of data may reach the server even if we never see a reply.
        rec.status = "uncertain"
        s.send(rec.text.encode() + b".\r\n")
        code, resp = s.getreply()
        rec.reply = (code, resp)
        if code == 250:
            m = re.match(rb"2\.0\.0 OK: queued as ([0-9A-Z]{12})$", resp)
            rec.qid = m.group(1).decode() if m else None
            rec.status = "ok"
        else:
            rec.status = "refused"

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
                    subject = f"dur-r{rnd}-t{t}-n{n}"
                    report = n % 4 == 3
                    rcpts = REPORT_RCPTS if report else RCPT_SETS[n % len(RCPT_SETS)]
                    sender = REPORT_SENDER if report else SENDER
                    # Mostly small messages; every 7th spans several spool chunks.
                    lines = 3000 if n % 7 == 0 else 5
                    body = "".join(f"{subject} line {i:05d}\r\n" for i in range(lines))
                    rec = Record(subject, rcpts, message(subject=subject, body=body,
                                                         sender=sender, to=rcpts[0]),
                                 sender=sender, notify="SUCCESS" if report else None)
                    with lock:
                        records[subject] = rec
                    self.send_one(s, rec)
                    if rec.status == "ok":
                        with lock:
                            counters[rnd] += 1
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                try:
                    s.close()
                except OSError:
                    pass

    # --- the test -----------------------------------------------------------------------
    def test_kill9_during_traffic_loses_and_duplicates_nothing(self):
        srv = self.server
        records = {}
        lock = threading.Lock()
        counters = collections.Counter()
        info = f"(seed {self.seed}; CARTEIRO_TEST_SEED={self.seed} repeats the kill times)"
        for rnd in range(self.ROUNDS):
            if rnd:
                srv.start()
                # Whatever a killed worker was receiving is gone before anybody connects.
                self.assertEqual(srv.incoming_files(), [], f"round {rnd}: incoming/ not "
                                                           f"emptied at start-up {info}")
            stop = threading.Event()
            threads = [threading.Thread(target=self.client,
                                        args=(rnd, t, stop, records, lock, counters))
                       for t in range(self.THREADS)]
            for th in threads:
                th.start()
            # Mid-stream: once some messages got their 250, at a random moment.
            want = self.rng.randint(3, 15)
            deadline = time.monotonic() + 10
            while counters[rnd] < want and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertGreaterEqual(counters[rnd], want, f"round {rnd}: traffic too slow")
            time.sleep(self.rng.uniform(0, 0.4))
            srv.kill9()
            stop.set()
            for th in threads:
                th.join(20)
                self.assertFalse(th.is_alive(), "a client thread hangs")

        srv.start()
        self.assertEqual(srv.incoming_files(), [])
        srv.wait_queue_empty(timeout=60)

        # What landed in the mailboxes.
        delivered = collections.Counter()
        received_qid = {}
        problems = []
        for rcpt in ("demo@example.test", "alice@example.test") + tuple(REPORT_RCPTS):
            for data in srv.mailbox(rcpt):
                subject = subject_of(data)
                delivered[(rcpt, subject)] += 1
                rec = records.get(subject)
                if rec is None:
                    problems.append(f"{rcpt}: unknown message {subject!r}")
                    continue
                if rcpt not in rec.rcpts:
                    problems.append(f"{rcpt}: got {subject}, sent to {rec.rcpts}")
                if not data.endswith(lf(rec.text)):
                    problems.append(f"{rcpt}: {subject} is damaged ({len(data)} bytes)")
                m = re.search(rb"ESMTP id ([0-9A-Z]{12})", data)
                received_qid[(rcpt, subject)] = m.group(1).decode() if m else None
            tmp = os.path.join(srv.mailbox_dir(rcpt), "tmp")
            left = os.listdir(tmp) if os.path.isdir(tmp) else []
            if left:
                problems.append(f"{rcpt}: tmp/ leftovers after the queue drained: {left[:5]}")

        # The success reports: the original's Subject is in the returned header section.
        reports = collections.Counter()
        for data in srv.mailbox(REPORT_SENDER):
            if not re.search(rb"^Subject: Successful Mail Delivery Report", data, re.M):
                problems.append(f"{REPORT_SENDER}: not a success report: {data[:200]!r}")
                continue
            m = re.search(rb"^Subject: (dur-[^\r\n]*)", data, re.M)
            reports[m.group(1).decode() if m else None] += 1

        stats = collections.Counter(rec.status for rec in records.values())
        uncertain_delivered = 0
        for rec in records.values():
            if rec.notify:
                # A report for a delivery, none without one. A kill between writing the
                # report and recording the recipient's status sends it once more (as for a
                # bounce: never lost, maybe repeated), and the recovery after each restart
                # can be killed again at the same point.
                n = reports[rec.subject]
                if delivered[(rec.rcpts[0], rec.subject)] != (n > 0) or n > self.ROUNDS + 1:
                    problems.append(f"{rec.subject} ({rec.status}): {n} success reports for "
                                    f"{delivered[(rec.rcpts[0], rec.subject)]} deliveries")
            counts = [delivered[(r, rec.subject)] for r in rec.rcpts]
            if any(c > 1 for c in counts):
                problems.append(f"{rec.subject} ({rec.status}) delivered more than once: "
                                f"{dict(zip(rec.rcpts, counts))}")
            if rec.status == "ok":
                if counts != [1] * len(rec.rcpts):
                    problems.append(f"{rec.subject} got 250 (qid {rec.qid}) but was delivered "
                                    f"{dict(zip(rec.rcpts, counts))}")
                for r in rec.rcpts:
                    q = received_qid.get((r, rec.subject))
                    if q is not None and q != rec.qid:
                        problems.append(f"{rec.subject}: 250 said {rec.qid}, Received says {q}")
            elif rec.status == "uncertain":
                # Either delivered to every recipient once, or to none.
                if len(set(counts)) != 1:
                    problems.append(f"{rec.subject} (reply lost) delivered to only some "
                                    f"recipients: {dict(zip(rec.rcpts, counts))}")
                uncertain_delivered += counts[0] == 1
            elif any(counts):
                problems.append(f"{rec.subject} ({rec.status}, reply {rec.reply}) delivered")
        summary = (f"{len(records)} messages: {dict(stats)}; {uncertain_delivered} of the "
                   f"uncertain ones delivered; {sum(reports.values())} success reports {info}")
        self.assertFalse(problems, "\n".join(problems[:30]) + "\n" + summary)
        self.assertGreaterEqual(stats["ok"], 3 * self.ROUNDS, summary)
        self.assertGreater(sum(reports.values()), 0, summary)
        self.assertEqual(srv.queue_files(), [])
        self.assertEqual(srv.incoming_files(), [])


class SpoolReuse(ServerTest):
    """A delivered queue file goes to spool/free/, its content scrubbed but its blocks kept,
    and the next message is written over it (queue_store.h: a new inode costs more than the
    rest of a message on this file system, and freed blocks cost discards)."""
    server_args = {"workers": 1, "relay_networks": ("127.0.0.2/32",)}

    def test_delivered_file_is_scrubbed_and_reused(self):
        srv = self.server
        free = os.path.join(srv.dir, "spool", "free")
        first = relay_one(srv, "first", rcpt="demo@example.test")
        srv.wait_mail("demo@example.test")
        srv.wait_queue_empty()
        self.assertTrue(wait_for(lambda: os.listdir(free) == [first], 10), os.listdir(free))
        st = os.stat(os.path.join(free, first))
        self.assertGreater(st.st_size, 0)  # its blocks are kept ...
        with open(os.path.join(free, first), "rb") as f:
            self.assertEqual(f.read(), bytes(st.st_size))  # ... but no delivered mail lingers
        time.sleep(0.3)  # a worker that found free/ empty looks again after 100 ms
        second = relay_one(srv, "second", rcpt="demo@example.test")
        self.assertNotEqual(second, first)
        self.assertEqual(len(srv.wait_mail("demo@example.test", 2)), 2)
        srv.wait_queue_empty()
        self.assertTrue(wait_for(lambda: os.listdir(free) == [second], 10), os.listdir(free))
        again = os.stat(os.path.join(free, second))
        self.assertEqual(again.st_ino, st.st_ino)  # the same file
        with open(os.path.join(free, second), "rb") as f:
            self.assertEqual(f.read(), bytes(again.st_size))
        self.assertTrue(srv.mailbox("demo@example.test")[1].endswith(
            lf(message(subject="second", to="demo@example.test")).split(b"\n\n", 1)[1]))


def relay_one(srv, subject, rcpt="remote@elsewhere.test"):
    """Send one message through the relay client 127.0.0.2; returns its queue id."""
    with Raw(srv.port, srv.host, source="127.0.0.2") as r:
        r.expect(220)
        r.expect(250, "EHLO relay.example.org\r\n")
        r.expect(250, "MAIL FROM:<relay@example.org>\r\n")
        r.expect(250, f"RCPT TO:<{rcpt}>\r\n")
        r.expect(354, "DATA\r\n")
        lines = r.expect(250, message(subject=subject, to=rcpt) + ".\r\n")
        r.expect(221, "QUIT\r\n")
    return re.search(r"queued as ([0-9A-Z]{12})", lines[-1]).group(1)


def chown_service(path):
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam("carteiro")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class StartupRecovery(ServerTest):
    server_args = {"workers": 2, "relay_networks": ("127.0.0.2/32",)}

    def test_queue_kept_and_incoming_emptied(self):
        srv = self.server
        qid = relay_one(srv, "kept-in-queue")
        self.assertEqual(srv.queue_files(), [qid])
        srv.kill9()
        # Leftovers of interrupted receptions: valid-looking ids of several slots, and junk.
        incoming = os.path.join(srv.dir, "spool", "incoming")
        names = ["1K0T8FKD06V1", "1K0T8FKD06V2", "1K0T8FKD06V0", "not-an-id"]
        for name in names:
            with open(os.path.join(incoming, name), "wb") as f:
                f.write(os.urandom(3000))
            chown_service(os.path.join(incoming, name))
        srv.start()
        self.assertEqual(srv.incoming_files(), [])
        srv.wait_log(rf"event=recovery removed_incomplete={len(names)}\b")
        srv.wait_log(r"event=queue_scanned messages=1\b")
        self.assertEqual(srv.queue_files(), [qid])
        listing = srv.queue_list()
        self.assertRegex(listing, rf"(?m)^{qid}\s+\d+s\s+\d+\s+remote\s+<relay@example\.org>$")
        self.assertIn("-> remote@elsewhere.test (remote, pending)", listing)
        self.assertIn("-- 1 message,", listing)
        # And it still works.
        with srv.smtp() as s:
            s.sendmail("a@example.org", ["demo@example.test"], message(subject="after"))
        srv.wait_mail("demo@example.test")
        # The local one leaves the queue once delivered; the relayed one stays.
        deadline = time.monotonic() + 10
        while srv.queue_files() != [qid] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(srv.queue_files(), [qid])

    def test_unpublished_queue_files_are_recovered(self):
        # A worker killed between the rename to queue/.<id> and the one to queue/<id>
        # (queue_store.c crash states 2-4): the client may have been told 250, so a complete
        # file is delivered after the restart, and an incomplete one (a power cut before the
        # syncs; never answered 250) goes to corrupt/, as does one whose CRC does not match
        # (a power cut mixed it with the file it was written over). A dot name that is no id
        # stays put.
        srv = self.server
        qid = relay_one(srv, "unpublished")
        queue = os.path.join(srv.dir, "spool", "queue")
        with open(os.path.join(queue, qid), "rb") as f:
            real = f.read()
        srv.kill9()
        os.unlink(os.path.join(queue, qid))
        mixed = real.replace(b"unpublished", b"UNPUBLISHED")
        self.assertNotEqual(mixed, real)
        files = {"." + qid: real, ".1K0T8FKD06V2": real[:len(real) // 2],
                 ".1K0T8FKD06W2": mixed, ".junk": b"x"}
        for name, content in files.items():
            p = os.path.join(queue, name)
            with open(p, "wb") as f:
                f.write(content)
            os.chmod(p, 0o600)
            chown_service(p)
        srv.start()
        srv.wait_log(rf"qid={qid} event=recovered_unpublished")
        for bad in ("1K0T8FKD06V2", "1K0T8FKD06W2"):
            srv.wait_log(rf"qid={bad} event=unpublished_damaged action=moved_to_corrupt")
        self.assertIn(qid, srv.wait_queue_list(rf"(?m)^{qid} "))
        self.assertIn(qid, srv.queue_files())
        self.assertNotIn("." + qid, os.listdir(queue))
        self.assertIn(".junk", os.listdir(queue))
        corrupt = os.listdir(os.path.join(srv.dir, "spool", "corrupt"))
        self.assertIn("1K0T8FKD06V2", corrupt)
        self.assertIn("1K0T8FKD06W2", corrupt)

    def test_corrupt_queue_file_at_startup(self):
        srv = self.server
        srv.kill9()
        bad = "1K0T8FKD06V1"
        path = os.path.join(srv.dir, "spool", "queue", bad)
        with open(path, "wb") as f:
            f.write(random.Random(7).randbytes(4096))
        os.chmod(path, 0o600)
        chown_service(path)
        srv.start()
        srv.wait_log(rf"qid={bad} event=queue_file_unreadable error=\"malformed queue file\" "
                     r"action=moved_to_corrupt")
        corrupt = os.path.join(srv.dir, "spool", "corrupt")
        deadline = time.monotonic() + 10
        while bad not in os.listdir(corrupt) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(bad, os.listdir(corrupt))
        self.assertNotIn(bad, srv.queue_files())
        msg = message(subject="after-corrupt")
        with srv.smtp() as s:
            s.sendmail("a@example.org", ["demo@example.test"], msg)
        self.assertTrue(srv.wait_mail("demo@example.test")[0].endswith(lf(msg)))
        srv.wait_queue_empty()

    def test_corrupt_queue_file_while_running(self):
        # Renamed into queue/ as the spool does (inotify IN_MOVED_TO): truncated copy of a
        # real queue file, and pure garbage.
        srv = self.server
        qid = relay_one(srv, "template")
        src = os.path.join(srv.dir, "spool", "queue", qid)
        with open(src, "rb") as f:
            real = f.read()
        staging = os.path.join(srv.dir, "spool", "staging")
        os.mkdir(staging)
        bads = {"1K0T8FKD06V3": real[:len(real) // 2], "1K0T8FKD06V4": os.urandom(1000)}
        for name, content in bads.items():
            p = os.path.join(staging, name)
            with open(p, "wb") as f:
                f.write(content)
            chown_service(p)
            os.rename(p, os.path.join(srv.dir, "spool", "queue", name))
        corrupt = os.path.join(srv.dir, "spool", "corrupt")
        deadline = time.monotonic() + 10
        while len(os.listdir(corrupt)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sorted(os.listdir(corrupt)), sorted(bads), srv.log()[-3000:])
        for name in bads:
            srv.wait_log(rf"qid={name} event=queue_file_unreadable")
        self.assertEqual(srv.queue_files(), [qid])
        with srv.smtp() as s:
            s.sendmail("a@example.org", ["alice@example.test"], message(subject="still"))
        srv.wait_mail("alice@example.test")
        shutil.rmtree(staging)


class QueueFileTrouble(ServerTest):
    """A queue file the queue manager cannot read for a while (EMFILE, EIO...; here a directory
    in its place: EISDIR) is read again later. Regression: the retry ran an attempt on the
    empty envelope of the failed read, which looked like "every recipient done": it rewrote
    status records in a loop and, once the file was readable, deleted it undelivered."""
    server_args = {"workers": 1, "extra_config": "retry-schedule 1s\n"}

    def test_unreadable_queue_file_is_read_again_not_dropped(self):
        srv = self.server
        qmgr = int(srv.wait_log(r"event=child_started role=qmgr index=0 pid=(\d+)").group(1))
        queue = os.path.join(srv.dir, "spool", "queue")
        staging = os.path.join(srv.dir, "spool", "staging")
        os.mkdir(staging)
        # A real queue file, kept out of the queue manager's sight.
        msg = message(subject="read-again")
        os.kill(qmgr, signal.SIGSTOP)
        try:
            with srv.smtp() as s:
                s.sendmail("a@example.org", ["demo@example.test"], msg)
            qid = srv.queue_files()[0]
            os.rename(os.path.join(queue, qid), os.path.join(staging, qid))
        finally:
            os.kill(qmgr, signal.SIGCONT)
        # (The queue manager may or may not have seen it go.) In its place, something that
        # cannot be read: the load fails and is retried.
        os.mkdir(os.path.join(staging, "dir"))
        os.rename(os.path.join(staging, "dir"), os.path.join(queue, qid))
        srv.wait_log(rf"qid={qid} event=queue_file_unreadable error=\"Is a directory\" "
                     r"action=retry retry_in=\d+s")
        time.sleep(2.5)  # a retry or two
        # Readable again: the next retry delivers it.
        os.rmdir(os.path.join(queue, qid))
        os.rename(os.path.join(staging, qid), os.path.join(queue, qid))
        got = srv.wait_mail("demo@example.test", timeout=20)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].endswith(lf(msg)))
        srv.wait_queue_empty()
        log = srv.log()
        self.assertNotIn("event=record_failed", log)
        retries = len(re.findall(rf"qid={qid} event=queue_file_unreadable", log))
        self.assertTrue(1 <= retries <= 8, f"{retries} load attempts\n{log[-3000:]}")
        shutil.rmtree(staging)


if __name__ == "__main__":
    unittest.main()
