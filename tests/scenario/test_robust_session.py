"""Robustness of one SMTP session: clients that vanish, stall, crawl or never read.

Each test drives the real daemon with raw sockets (harness.Raw) or smtplib and checks what the
server did on disk (spool/incoming, spool/queue, the Maildirs) and in its log.
"""
import socket
import subprocess
import threading
import time
import unittest

from harness import Raw, ServerTest, lf, message, wait_for


def start_mail(srv, rcpt="demo@example.test", timeout=10, helo="robust.example.org"):
    """A raw session at the point where RCPT got its 250."""
    r = srv.raw(timeout=timeout)
    r.expect(250, f"EHLO {helo}\r\n")
    r.expect(250, "MAIL FROM:<sender@example.org>\r\n")
    r.expect(250, f"RCPT TO:<{rcpt}>\r\n")
    return r


def start_data(srv, rcpt="demo@example.test", timeout=10):
    """A raw session at the point where DATA got its 354."""
    r = start_mail(srv, rcpt, timeout)
    r.expect(354, "DATA\r\n")
    return r


def big_body(nbytes, tag="x"):
    """CRLF text lines (no leading dots) of about nbytes."""
    line = (tag * 70 + "\r\n").encode()
    return line * (nbytes // len(line) + 1)


def abort_connection(r):
    """Close with RST (SO_LINGER 0) instead of FIN: the client host vanished."""
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    r.close()


class Disconnects(ServerTest):
    """A client that goes away in the middle of the content: nothing is kept or delivered."""

    server_args = {"workers": 1}

    def assert_nothing_left(self, what):
        srv = self.server
        # The spool file is removed by an I/O job after the session ends: poll for it.
        self.assertTrue(wait_for(lambda: not srv.incoming_files() and not srv.queue_files(), 10),
                        f"{what}: spool not clean: incoming={srv.incoming_files()} "
                        f"queue={srv.queue_files()}\n{srv.log()[-2000:]}")
        self.assertEqual(srv.mailbox("demo@example.test"), [], what)

    def assert_dropped(self, disconnect, what, subject):
        """After the client went away: its disconnect (a regex) logged, nothing left of its
        message (what: for the failure message), and mail still served (subject)."""
        self.server.wait_log(disconnect)
        self.assert_nothing_left(what)
        self.assert_still_serving(subject)

    def assert_still_serving(self, subject):
        msg = message(subject=subject)
        with self.server.smtp() as s:
            self.assertEqual(s.sendmail("a@example.org", ["demo@example.test"], msg), {})
        got = self.server.wait_mail("demo@example.test")
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_eof_in_data_after_spool_file_exists(self):
        srv = self.server
        r = start_data(srv)
        # More than one spool chunk (128K), so the incoming file is really on disk.
        r.send(b"Subject: cut\r\n\r\n" + big_body(400_000))
        self.assertTrue(wait_for(lambda: srv.incoming_files(), 10),
                        "the partial message never reached spool/incoming")
        r.close()
        self.assert_dropped(r'event=disconnect client=127\.0\.0\.1 reason="eof in data"',
                            "eof in DATA", "after-eof-in-data")

    def test_reset_in_data(self):
        srv = self.server
        r = start_data(srv)
        r.send(b"Subject: reset\r\n\r\n" + big_body(300_000))
        self.assertTrue(wait_for(lambda: srv.incoming_files(), 10))
        abort_connection(r)
        self.assert_dropped(r'event=disconnect client=127\.0\.0\.1 reason="connection error" '
                            r'messages=0 commands=4 ', "RST in DATA", "after-rst-in-data")

    def test_eof_in_data_with_final_line_but_no_dot(self):
        # Everything but the terminating "." line: the message is incomplete, not delivered.
        srv = self.server
        r = start_data(srv)
        r.send(message(subject="almost").encode())
        time.sleep(0.2)
        r.close()
        self.assert_dropped(r'event=disconnect client=127\.0\.0\.1 reason="eof in data"',
                            "eof before the final dot", "after-almost")

    def test_eof_in_bdat_chunk(self):
        srv = self.server
        r = start_mail(srv)
        body = b"Subject: bdat cut\r\n\r\n" + big_body(400_000)
        r.send(f"BDAT {len(body) + 1000} LAST\r\n".encode() + body)
        self.assertTrue(wait_for(lambda: srv.incoming_files(), 10),
                        "the partial chunk never reached spool/incoming")
        r.close()
        self.assert_dropped(r'event=disconnect client=127\.0\.0\.1 reason="eof in data"',
                            "eof in a BDAT chunk", "after-bdat-cut")

    def test_eof_between_bdat_chunks(self):
        srv = self.server
        r = start_mail(srv)
        chunk = b"Subject: bdat half\r\n\r\n" + big_body(200_000)
        lines = r.expect(250, f"BDAT {len(chunk)}\r\n".encode() + chunk)
        self.assertIn(f"{len(chunk)} octets", lines[-1])
        r.close()
        self.assert_dropped(r"event=disconnect client=127\.0\.0\.1 reason=eof messages=0 "
                            r"commands=4 ", "eof between BDAT chunks", "after-bdat-half")


class Timeouts(ServerTest):
    server_args = {"workers": 1, "extra_config": "smtp-command-timeout 2s\n"
                                                 "smtp-data-timeout 2s\n"}

    def test_idle_command_timeout(self):
        r = self.server.raw(timeout=15)
        r.expect(250, "EHLO idle.example.org\r\n")
        t0 = time.monotonic()
        code, lines = r.reply()
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[-1].startswith("421 4.4.2"), lines)
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 5.0)
        self.assertTrue(r.closed(5), "connection not closed after the timeout reply")
        self.server.wait_log(r"event=timeout state=ready")
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 reason=timeout")

    def test_command_timeout_before_helo(self):
        r = self.server.raw(timeout=15)
        t0 = time.monotonic()
        code, lines = r.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[-1].startswith("421 4.4.2"), lines)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertTrue(r.closed(5))

    def test_data_timeout(self):
        srv = self.server
        r = start_data(srv, timeout=15)
        r.send(b"Subject: stalled\r\n\r\n" + big_body(300_000))
        self.assertTrue(wait_for(lambda: srv.incoming_files(), 10))
        t0 = time.monotonic()
        code, lines = r.reply()
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[-1].startswith("421 4.4.2"), lines)
        self.assertLess(elapsed, 5.0)
        self.assertTrue(r.closed(5))
        srv.wait_log(r"event=timeout state=data")
        self.assertTrue(wait_for(lambda: not srv.incoming_files() and not srv.queue_files(), 10),
                        f"incoming={srv.incoming_files()} queue={srv.queue_files()}")
        self.assertEqual(srv.mailbox("demo@example.test"), [])

    def test_bdat_chunk_timeout(self):
        srv = self.server
        r = start_mail(srv, timeout=15, helo="stall.example.org")
        r.send("BDAT 5000 LAST\r\nSubject: stalled chunk\r\n\r\n")
        t0 = time.monotonic()
        code, lines = r.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[-1].startswith("421 4.4.2"), lines)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertTrue(r.closed(5))
        srv.wait_log(r"event=timeout state=bdat-chunk")
        self.assertTrue(wait_for(lambda: not srv.incoming_files() and not srv.queue_files(), 10))
        self.assertEqual(srv.mailbox("demo@example.test"), [])

    def test_activity_keeps_data_alive(self):
        # The timeouts are idle times: a DATA phase longer than both, with bytes every 0.5 s,
        # is not cut.
        srv = self.server
        r = start_data(srv, timeout=15)
        msg = message(subject="steady", body="line 1\r\nline 2\r\n")
        parts = msg.encode().split(b"\r\n")[:-1]
        t0 = time.monotonic()
        for part in parts:
            r.send(part + b"\r\n")
            time.sleep(0.45)
        self.assertGreater(time.monotonic() - t0, 3.0)
        lines = r.expect(250, ".\r\n")
        self.assertIn("queued as", lines[-1])
        got = srv.wait_mail("demo@example.test")
        self.assertTrue(got[0].endswith(lf(msg)))


class SlowClient(ServerTest):
    """One byte every 50 ms for a whole transaction, while others are served at full speed."""

    # One worker: a session that blocked the event loop would stall everybody.
    server_args = {"workers": 1}

    def test_byte_by_byte_transaction(self):
        srv = self.server
        body = "Subject: slow\r\n\r\n.dot\r\nx\r\n"
        commands = ["HELO s.example\r\n", "MAIL FROM:<s@a.example>\r\n",
                    "RCPT TO:<demo@example.test>\r\n", "DATA\r\n", body + ".\r\n", "QUIT\r\n"]
        expect = [250, 250, 250, 354, 250, 221]
        replies = []
        errors = []

        def slow():
            try:
                with srv.raw(timeout=20) as r:
                    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for cmd in commands:
                        for b in cmd.encode():
                            r.send(bytes([b]))
                            time.sleep(0.05)
                        replies.append(r.reply())
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))

        t = threading.Thread(target=slow)
        t.start()
        # Meanwhile, normal clients go through promptly.
        fast_times = []
        for i in range(5):
            t0 = time.monotonic()
            with srv.smtp() as s:
                s.sendmail("f@example.org", ["alice@example.test"], message(subject=f"fast{i}"))
            fast_times.append(time.monotonic() - t0)
            time.sleep(0.3)
        self.assertTrue(t.is_alive(), "the slow transaction ended too early to overlap")
        t.join(30)
        self.assertFalse(errors, errors)
        self.assertEqual([c for c, _ in replies], expect, replies)
        self.assertLess(max(fast_times), 2.0, fast_times)
        srv.wait_mail("alice@example.test", 5)
        got = srv.wait_mail("demo@example.test")
        # Dot-unstuffed, LF line ends.
        self.assertTrue(got[0].endswith(b"Subject: slow\n\ndot\nx\n"), got[0])


def tcp_queues(port):
    """{(local_port, peer_port): (recv_q, send_q)} for established loopback sockets on port."""
    out = subprocess.run(["ss", "-tnH", "state", "established",
                          f"( sport = :{port} or dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    q = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        recv_q, send_q = int(f[0]), int(f[1])
        lport = int(f[2].rsplit(":", 1)[1])
        pport = int(f[3].rsplit(":", 1)[1])
        q[(lport, pport)] = (recv_q, send_q)
    return q


def tcp_wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


class OutputBackPressure(ServerTest):
    """A client that pipelines commands and never reads must not grow the server's buffers."""

    NOOP = b"NOOP\r\n"
    REPLY = b"250 2.0.0 OK\r\n"

    server_args = {"workers": 1}

    def setUp(self):
        super().setUp()
        self.sock = None

    def tearDown(self):
        if self.sock:
            self.sock.close()  # before the server stops: it would wait for this reader
        super().tearDown()

    def test_pipelined_noops_without_reading(self):
        srv = self.server
        # The kernel alone can hold up to tcp_wmem[2] of the server's output (and more in the
        # client's receive buffer), so fewer replies than that prove nothing: send enough
        # NOOPs (at least 20,000) that their replies are 2 MB more than the kernel can hold.
        count = max(20_000, (tcp_wmem_max() + (2 << 20)) // len(self.REPLY) + 1)
        sock = self.sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((srv.host, srv.port))
        sock.settimeout(60)
        cport = sock.getsockname()[1]
        payload = self.NOOP * count
        sent = []

        def writer():
            try:
                sock.sendall(payload)
                sent.append(True)
            except OSError as e:
                sent.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        # Wait until the server stops making progress (paused, or done if it never pauses).
        prev = None
        stable = 0
        deadline = time.monotonic() + 30
        while stable < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
            q = tcp_queues(srv.port)
            cur = (q.get((srv.port, cport)), q.get((cport, srv.port)), bool(sent))
            stable = stable + 1 if cur == prev else 0
            prev = cur
        self.assertEqual(stable, 3, f"the queues never settled: {prev}")
        self.assertTrue(prev[0] and prev[1], f"connection not found by ss: {prev}")
        (srv_recv, srv_send), (cli_recv, cli_send), _ = prev
        unread = srv_recv + cli_send
        self.assertGreater(unread, 0, "the server read every command although the client "
                                      "read no reply: no back-pressure")
        if sent:
            # All NOOPs are in the kernel or read: bound what the server holds in memory
            # (replies it produced but could not write; input it read but did not process).
            consumed = len(payload) - unread
            in_kernel_out = srv_send + cli_recv
            held = consumed // len(self.NOOP) * len(self.REPLY) - in_kernel_out
            self.assertLess(held, 1 << 20, f"the server holds about {held} bytes of replies "
                                           f"(consumed={consumed} queues={prev})")

        # The same worker still serves others while this client is paused.
        with srv.smtp(timeout=5) as s:
            self.assertEqual(s.noop()[0], 250)

        # Now read everything: every NOOP got its reply, in order, none dropped.
        got = 0
        tail = b""
        sock.settimeout(30)
        greeting = None
        while got < count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            if greeting is None:
                if b"\r\n" not in data:
                    tail = data
                    continue
                greeting, data = data.split(b"\r\n", 1)
            n = data.count(self.REPLY)
            # Anything else than whole replies (and one partial at the end) is an error.
            cut = data.rfind(self.REPLY) + len(self.REPLY) if n else 0
            self.assertEqual(data[:cut], self.REPLY * n, "unexpected reply in the stream")
            tail = data[cut:]
            got += n
        t.join(30)
        self.assertTrue(greeting and greeting.startswith(b"220 "), greeting)
        self.assertEqual(got, count)
        self.assertEqual(tail, b"")
        self.assertEqual(sent, [True])
        sock.sendall(b"QUIT\r\n")
        r = Raw.__new__(Raw)
        r.sock, r.buf = sock, b""
        r.expect(221)
        sock.close()
        srv.wait_log(rf"event=disconnect client=127\.0\.0\.1 reason=quit messages=0 "
                     rf"commands={count + 1} errors=0")


if __name__ == "__main__":
    unittest.main()
