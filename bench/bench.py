#!/usr/bin/python3
"""make bench: carteiro side by side with Postfix and Dovecot on this machine.

Usage: bench/bench.py [--quick] [--runs N] [--only accept,local,idle,pop3,ceiling]
                      [--idle N] [--idle-postfix N] [--keep]

Workloads (see bench/README.md for what each number means):
  accept    smtp-source -s 1/20/100, 4 KiB and 100 KiB, mail for remote.test that the server
            relays to an smtp-sink: msg/s at which the server answers 250 (smtp-source's wall
            time) and, in the same run, msg/s at which the messages reach the sink (end to end)
  e2e-mx    the same at -s 20, 4 KiB, with carteiro delivering by MX from a dnsmasq test DNS
  local     smtp-source -s 20 to a local Maildir: msg/s until the last file is in new/
  idle      N idle SMTP sessions (banner and EHLO done) held open: total RSS (and PSS) of the
            server's processes, and the time a new session waits for its banner meanwhile
  pop3      one POP3 session downloads 10,000 messages (pipelined RETR) from carteiro and from
            Dovecot serving a copy of the same Maildir
  ceiling   smtp-source straight into smtp-sink, the same loads, in the same rounds as accept:
            what the load generator and loopback allow
Each measurement runs carteiro and the reference alternately (the first one alternates too),
--runs times; the table shows the medians and the ratio carteiro/reference.

Must run as root (the servers drop to their own users; Postfix and Dovecot need it).
Every server lives in a temporary directory (removed at the end unless --keep) and on
127.0.0.1 ports chosen free; every process started is stopped at the end, also on ^C.
"""
import argparse
import operator
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
SENDER = "bench@client.test"
REMOTE_RCPT = f"user@{servers.REMOTE_DOMAIN}"
LOCAL_RCPT = f"{servers.LOCAL_USER}@{servers.LOCAL_DOMAIN}"


def log(msg):
    print(f"bench: {msg}", flush=True)


def smtp_source(port, sessions, count, size, rcpt, timeout=600):
    """Run smtp-source; its wall time in seconds (RuntimeError if it fails)."""
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(count), "-l", str(size),
           "-f", SENDER, "-t", rcpt, "-M", "client.test", f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source: {p.stdout}{p.stderr}".strip())
    return t0, elapsed


def wait_until(pred, timeout, interval=0.005):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
    return time.monotonic()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Table:
    def __init__(self):
        self.rows = []

    def add(self, name, unit, c, ref, ref_name, ceiling=None, note=""):
        self.rows.append((name, unit, c, ref, ref_name, ceiling, note))

    @staticmethod
    def fmt(v, unit):
        if v is None:
            return "-"
        if unit in ("ms",):
            return f"{v:.1f}"
        if unit == "MB":
            return f"{v:.1f}"
        return f"{v:,.0f}"

    def render(self):
        head = f"{'workload':<34} {'unit':<6} {'carteiro':>10} {'reference':>10} " \
               f"{'ref':<8} {'ratio':>6} {'ceiling':>8}  note"
        lines = [head, "-" * len(head)]
        for name, unit, c, ref, ref_name, ceiling, note in self.rows:
            ratio = f"{c / ref:.2f}" if c and ref else "-"
            lines.append(f"{name:<34} {unit:<6} {self.fmt(c, unit):>10} "
                         f"{self.fmt(ref, unit):>10} {ref_name:<8} {ratio:>6} "
                         f"{self.fmt(ceiling, unit):>8}  {note}")
        return "\n".join(lines)


# Issue 6's targets: (row name pattern, what is compared, test, bound, how it is read).
TARGETS = [
    (r"(accept|end-to-end) \d+ KiB -s (20|100)$", "ratio", operator.ge, 5.0, ">= 5x postfix"),
    (r"accept \d+ KiB -s 1$", "ratio", operator.ge, 3.0, ">= 3x postfix"),
    (r"idle sessions: total RSS$", "carteiro", operator.lt, 100.0, "< 100 MB"),
    (r"idle: new banner, max of 20$", "carteiro", operator.le, 50.0, "<= 50 ms"),
    (r"POP3 download", "ratio", operator.gt, 1.0, "> dovecot"),
]


def target_lines(table):
    """One line per row that has a target in TARGETS: the value and whether it holds."""
    lines = []
    for name, unit, c, ref, _ref_name, ceiling, _note in table.rows:
        for pattern, what, test, bound, text in TARGETS:
            if not re.match(pattern, name) or c is None or (what == "ratio" and not ref):
                continue
            v = c / ref if what == "ratio" else c
            held = test(v, bound)
            shown = f"{v:.2f}x" if what == "ratio" else f"{Table.fmt(v, unit)} {unit}"
            why = ""
            if not held and what == "ratio" and ceiling and ref * bound > ceiling:
                why = (f" ({bound:g}x the reference, {ref * bound:,.0f} {unit}, is above "
                       f"the ceiling, {ceiling:,.0f})")
            lines.append(f"  {name:<34} {text:<14} {shown:>10}  "
                         f"{'met' if held else 'not met'}{why}")
    return lines


# --- accept and end to end ------------------------------------------------------------------

def relay_run(srv, sink, sessions, count, size, timeout):
    """One smtp-source run of remote mail through srv: (accept msg/s, end-to-end msg/s,
    messages per second of the server's CPU time, from the start until its queue is empty)."""
    base = sink.count
    cpu0 = servers.cpu_seconds(srv.pids())
    t0, elapsed = smtp_source(srv.port, sessions, count, size, REMOTE_RCPT)
    done = sink.wait_count(base + count, timeout)
    e2e = count / (done - t0) if done else None
    if done is None:
        log(f"{srv.name}: only {sink.count - base} of {count} messages reached the sink "
            f"within {timeout}s")
    # The next run starts from an idle server: its queue empty.
    wait_until(srv.queue_empty, 60, 0.05)
    cpu = servers.cpu_seconds(srv.pids()) - cpu0
    return count / elapsed, e2e, count / cpu if done and cpu > 0 else None


def bench_accept(args, table, root):
    sinks = [servers.Sink(root, "sink-carteiro").start(), servers.Sink(root, "sink-ref").start()]
    c = servers.Carteiro(root, relay_port=sinks[0].port).start()
    p = args.reference(root, sinks[1].port, "reference").start()
    pairs = [(c, sinks[0]), (p, sinks[1])]
    # The ceiling is measured in the same rounds, so that it saw the same machine.
    ceiling_sink = servers.Sink(root, "sink-ceiling").start() if args.with_ceiling else None
    loads = [(s, size) for size in args.sizes for s in args.sessions]
    results = {}
    for sessions, size in loads:
        count = args.count(sessions, size)
        # A warm-up run each (not counted): page cache, process pools, queue directories.
        for srv, sink in pairs:
            relay_run(srv, sink, sessions, min(count, 200), size, 120)
        acc = {"carteiro": [], p.name: []}
        e2e = {"carteiro": [], p.name: []}
        per_cpu = {"carteiro": [], p.name: []}
        ceil = []
        for i in range(args.runs):
            if ceiling_sink:
                ceil.append(ceiling_run(ceiling_sink, sessions, count, size))
            order = pairs if i % 2 == 0 else pairs[::-1]
            for srv, sink in order:
                a, e, pc = relay_run(srv, sink, sessions, count, size, args.e2e_timeout)
                acc[srv.name].append(a)
                e2e[srv.name].append(e)
                per_cpu[srv.name].append(pc)
                log(f"accept -s {sessions} {size // 1024} KiB x{count}: {srv.name} "
                    f"accept {a:,.0f}/s end-to-end {e or 0:,.0f}/s, "
                    f"{pc or 0:,.0f} per CPU second")
        if ceil:
            args.ceilings[(sessions, size)] = median(ceil)
        results[(sessions, size)] = (acc, e2e, per_cpu)
    c.stop()
    p.stop()
    if ceiling_sink:
        ceiling_sink.stop()
    for kind in ("accept", "end-to-end", "per CPU second"):
        for sessions, size in loads:
            acc, e2e, per_cpu = results[(sessions, size)]
            d = {"accept": acc, "end-to-end": e2e, "per CPU second": per_cpu}[kind]
            ceiling = args.ceilings.get((sessions, size)) if kind != "per CPU second" else None
            table.add(f"{kind} {size // 1024} KiB -s {sessions}",
                      "msg" if kind == "per CPU second" else "msg/s",
                      median(d["carteiro"]), median(d[p.name]), p.name, ceiling,
                      "accepted and relayed, per second of the server's CPU"
                      if kind == "per CPU second" and (sessions, size) == loads[0] else "")
    return results


def bench_e2e_mx(args, table, root):
    """carteiro delivering by MX (dnsmasq) instead of relayhost; the reference row is Postfix
    with its relayhost (it has no MX path here without a DNS of its own: same work)."""
    port = servers.free_port()
    dns = servers.Dns(root).start()
    sink = servers.Sink(root, "sink-mx")
    sink.port = port
    sink.start()
    c = servers.Carteiro(root, dns=dns, outbound_port=port, name="carteiro-mx").start()
    count = args.count(20, 4096)
    relay_run(c, sink, 20, min(count, 200), 4096, 120)
    e2e = []
    for _ in range(args.runs):
        e2e.append(relay_run(c, sink, 20, count, 4096, args.e2e_timeout)[1])
        log(f"end-to-end by MX -s 20 4 KiB x{count}: carteiro {e2e[-1] or 0:,.0f}/s")
    c.stop()
    sink.stop()
    dns.stop()
    table.add("end-to-end by MX 4 KiB -s 20", "msg/s", median(e2e), None, "-",
              args.ceilings.get((20, 4096)), "dnsmasq MX -> smtp-sink")


# --- local delivery -------------------------------------------------------------------------

def local_run(srv, sessions, count, timeout):
    servers.maildir_empty(srv.maildir)
    t0, _ = smtp_source(srv.port, sessions, count, 4096, LOCAL_RCPT)
    done = wait_until(lambda: servers.maildir_count(srv.maildir) >= count, timeout, 0.01)
    if done is None:
        log(f"{srv.name}: only {servers.maildir_count(srv.maildir)} of {count} messages in "
            f"the Maildir within {timeout}s")
        return None
    wait_until(srv.queue_empty, 60, 0.05)
    return count / (done - t0)


def bench_local(args, table, root):
    sink = servers.Sink(root, "sink-local").start()
    c = servers.Carteiro(root, relay_port=sink.port, name="carteiro-local").start()
    p = args.reference(root, sink.port, "reference-local").start()
    count = args.count(20, 4096)
    for srv in (c, p):
        local_run(srv, 20, min(200, count), 120)
    rates = {"carteiro": [], p.name: []}
    for i in range(args.runs):
        for srv in ((c, p) if i % 2 == 0 else (p, c)):
            r = local_run(srv, 20, count, args.e2e_timeout)
            rates[srv.name].append(r)
            log(f"local -s 20 4 KiB x{count}: {srv.name} {r or 0:,.0f}/s")
    c.stop()
    p.stop()
    sink.stop()
    table.add("local Maildir 4 KiB -s 20", "msg/s", median(rates["carteiro"]),
              median(rates[p.name]), p.name)


# --- idle sessions --------------------------------------------------------------------------

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class IdleClients:
    """n SMTP sessions that read the banner, say EHLO, read its reply and then wait."""

    def __init__(self, port, n, sources=16):
        self.port, self.n = port, n
        self.sources = [f"127.0.0.{2 + i}" for i in range(sources)]
        self.socks = []
        self.retried = 0

    def open(self, timeout=120):
        sel = selectors.DefaultSelector()
        state = {}  # socket -> [step, buffered reply, started]; step 0: banner, 1: EHLO reply
        ready = 0
        i = 0
        deadline = time.monotonic() + timeout

        def connect():
            nonlocal i
            s = socket.socket()
            s.setblocking(False)
            s.bind((self.sources[i % len(self.sources)], 0))
            i += 1
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            state[s] = [0, b"", time.monotonic()]
            sel.register(s, selectors.EVENT_READ)

        while ready < self.n:
            # At most 200 handshakes in flight (the listen backlog and the server's accepts).
            while ready + len(state) < self.n and len(state) < 200:
                connect()
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ready} of {self.n} idle sessions set up")
            for key, _ in sel.select(0.5):
                s = key.fileobj
                st = state[s]
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                if not data:
                    raise RuntimeError(f"the server closed an idle session: {st[1]!r}")
                st[1] += data
                if st[0] == 0 and b"\r\n" in st[1]:
                    if not st[1].startswith(b"220"):
                        raise RuntimeError(f"banner {st[1]!r}")
                    st[0], st[1] = 1, b""
                    s.send(b"EHLO idle.client.test\r\n")
                elif st[0] == 1 and (st[1].startswith(b"250 ") or b"\r\n250 " in st[1]) \
                        and st[1].endswith(b"\r\n"):
                    sel.unregister(s)
                    del state[s]
                    self.socks.append(s)
                    ready += 1
            # A handshake lost to a full accept queue (the client thinks it is connected, the
            # server dropped the ACK) never gets a banner: start that one again.
            now = time.monotonic()
            for s in [s for s, st in state.items() if now - st[2] > 5]:
                sel.unregister(s)
                del state[s]
                s.close()
                self.retried += 1
        sel.close()

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def banner_latency_ms(port):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(512)
            if not chunk:
                raise RuntimeError("closed before the banner")
            buf += chunk
        t = (time.monotonic() - t0) * 1000
        s.sendall(b"QUIT\r\n")
    return t


def idle_measure(srv, n):
    clients = IdleClients(srv.port, n)
    try:
        t0 = time.monotonic()
        clients.open()
        setup = time.monotonic() - t0
        time.sleep(1.0)
        lat = []
        for _ in range(20):
            lat.append(banner_latency_ms(srv.port))
            time.sleep(0.05)
        rss, pss = servers.memory_kb(srv.pids())
        log(f"idle {n}: {srv.name} set up in {setup:.1f}s ({clients.retried} retried), RSS {rss / 1024:.1f} MB "
            f"PSS {pss / 1024:.1f} MB over {len(srv.pids())} processes, banner median "
            f"{statistics.median(lat):.2f} ms max {max(lat):.2f} ms")
        return rss / 1024, pss / 1024, statistics.median(lat), max(lat)
    finally:
        clients.close()


def bench_idle(args, table, root):
    n, nref = args.idle, args.idle_postfix
    raise_nofile(max(n, nref) * 2 + 4096)  # inherited by the servers started below
    sink = servers.Sink(root, "sink-idle").start()
    c = servers.Carteiro(root, relay_port=sink.port, name="carteiro-idle").start()
    rc = idle_measure(c, n)
    c.stop()
    rp = None
    if nref:
        p = servers.Postfix(root, relay_port=sink.port, process_limit=nref + 100,
                            name="postfix-idle").start()
        rp = idle_measure(p, nref)
        p.stop()
    sink.stop()
    note = f"carteiro {n:,} sessions, postfix {nref:,}" if rp else f"{n:,} sessions"
    table.add("idle sessions: total RSS", "MB", rc[0], rp and rp[0], "postfix", None, note)
    table.add("idle sessions: total PSS", "MB", rc[1], rp and rp[1], "postfix", None, note)
    table.add("idle: new banner, median", "ms", rc[2], rp and rp[2], "postfix")
    table.add("idle: new banner, max of 20", "ms", rc[3], rp and rp[3], "postfix")


# --- POP3 -----------------------------------------------------------------------------------

def make_maildir(path, n, size, uid, gid):
    """n messages of about size bytes (LF line ends, as in a Maildir) in path/cur/."""
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    line = b"x" * 70 + b"\n"
    body = line * max(1, (size - 200) // len(line))
    now = int(time.time())
    for i in range(n):
        data = (b"From: <a@client.test>\nTo: <bench@example.test>\nSubject: message %d\n"
                b"Message-ID: <%d.bench@client.test>\n\n" % (i, i) + body)
        name = f"{now}.M{i}P1.bench.test,S={len(data)}:2,S"  # S=: the exact file size
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(data)
    for dirpath, dirnames, filenames in os.walk(os.path.dirname(os.path.dirname(path))):
        os.chown(dirpath, uid, gid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), uid, gid)


def pop3_download(port, n, timeout=300):
    """Log in, RETR 1..n pipelined, QUIT; returns the elapsed seconds (connect to QUIT)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")

    def line():
        ln = f.readline()
        if not ln.startswith(b"+OK"):
            raise RuntimeError(f"POP3: {ln!r}")
        return ln

    line()
    s.sendall(f"USER {LOCAL_RCPT}\r\n".encode())
    line()
    s.sendall(f"PASS {servers.PASSWORD}\r\n".encode())
    line()
    s.sendall(b"STAT\r\n")
    count = int(line().split()[1])
    if count < n:
        raise RuntimeError(f"POP3 maildrop has {count} messages, expected {n}")
    cmds = b"".join(b"RETR %d\r\n" % i for i in range(1, n + 1))
    sender = threading.Thread(target=s.sendall, args=(cmds,))
    sender.start()
    # Each reply ends in CRLF.CRLF, which cannot occur inside a dot-stuffed message.
    got, tail, nbytes = 0, b"", 0
    while got < n:
        chunk = f.read1(1 << 20)
        if not chunk:
            raise RuntimeError(f"POP3 closed after {got} messages")
        nbytes += len(chunk)
        data = tail + chunk
        got += data.count(b"\r\n.\r\n") - tail.count(b"\r\n.\r\n")
        tail = data[-4:]
    sender.join()
    s.sendall(b"QUIT\r\n")
    f.readline()
    elapsed = time.monotonic() - t0
    s.close()
    return elapsed, nbytes


def bench_pop3(args, table, root):
    n = args.pop3
    sink = servers.Sink(root, "sink-pop3").start()
    c = servers.Carteiro(root, relay_port=sink.port, pop3=True, name="carteiro-pop3")
    d = servers.Dovecot(root)
    import pwd
    cu = pwd.getpwnam("carteiro")
    make_maildir(c.maildir, n, 4096, cu.pw_uid, cu.pw_gid)
    make_maildir(d.maildir, n, 4096, d.uid, d.gid)
    c.start()
    d.start()
    # First session each (not counted): Dovecot builds its index, both warm the page cache.
    pop3_download(c.pop3_port, n)
    pop3_download(d.port, n)
    rates = {"carteiro": [], "dovecot": []}
    for i in range(args.runs):
        for name, port in ((("carteiro", c.pop3_port), ("dovecot", d.port)) if i % 2 == 0
                           else (("dovecot", d.port), ("carteiro", c.pop3_port))):
            elapsed, nbytes = pop3_download(port, n)
            rates[name].append(n / elapsed)
            log(f"pop3 RETR x{n}: {name} {n / elapsed:,.0f} msg/s "
                f"({nbytes / elapsed / 1e6:.0f} MB/s)")
    c.stop()
    d.stop()
    sink.stop()
    table.add(f"POP3 download {n:,} x 4 KiB", "msg/s", median(rates["carteiro"]),
              median(rates["dovecot"]), "dovecot")


# --- one session, step by step --------------------------------------------------------------

STEPS_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_steps.c")


def steps_run(binary, port, sessions):
    """{step: median microseconds} of smtp_steps' sessions against 127.0.0.1:port."""
    out = subprocess.run([binary, "127.0.0.1", str(port), str(sessions)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return {name: float(v) for name, v in (line.rsplit(" ", 1) for line in out.splitlines())}


def bench_steps(args, table, root):
    """One session at a time (what -s 1 measures), each command timed: carteiro relaying to
    an smtp-sink against that smtp-sink alone, so the rows show where carteiro's extra time
    per message goes (the commit of the data, mostly)."""
    binary = os.path.join(root, "smtp_steps")
    subprocess.run(["cc", "-O2", "-o", binary, STEPS_SOURCE], check=True)
    sink = servers.Sink(root, "sink-steps").start()
    c = servers.Carteiro(root, relay_port=sink.port, name="carteiro-steps").start()
    sessions = max(200, int(2000 * args.scale))
    steps_run(binary, c.port, 200)  # warm-up, not counted
    steps_run(binary, sink.port, 200)
    runs = {"carteiro": [], "sink": []}
    for i in range(args.runs):
        order = (("carteiro", c.port), ("sink", sink.port))
        for name, port in (order if i % 2 == 0 else order[::-1]):
            runs[name].append(steps_run(binary, port, sessions))
            log(f"steps x{sessions}: {name} " +
                " ".join(f"{k}={v:.0f}" for k, v in runs[name][-1].items()))
    for step in runs["carteiro"][0]:
        table.add(f"one session: {step}", "us", median([r[step] for r in runs["carteiro"]]),
                  median([r[step] for r in runs["sink"]]), "sink", None,
                  "carteiro relaying to smtp-sink / smtp-sink" if step == "sum" else "")
    c.stop()
    sink.stop()


# --- ceiling --------------------------------------------------------------------------------

def ceiling_run(sink, sessions, count, size):
    """smtp-source straight into smtp-sink: msg/s."""
    base = sink.count
    _, elapsed = smtp_source(sink.port, sessions, count, size, REMOTE_RCPT)
    sink.wait_count(base + count, 30)
    rate = count / elapsed
    log(f"ceiling -s {sessions} {size // 1024} KiB x{count}: {rate:,.0f}/s")
    return rate


def bench_ceiling(args, root):
    """The ceiling alone (when the accept workload does not measure it in its rounds)."""
    sink = servers.Sink(root, "sink-ceiling").start()
    for size in args.sizes:
        for sessions in args.sessions:
            count = args.count(sessions, size)
            args.ceilings[(sessions, size)] = median(
                [ceiling_run(sink, sessions, count, size) for _ in range(args.runs)])
    sink.stop()


# --- main -----------------------------------------------------------------------------------

def machine_line():
    load = open("/proc/loadavg").read().split()[:3]
    cpu = "?"
    for ln in open("/proc/cpuinfo"):
        if ln.startswith("model name"):
            cpu = ln.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), load average {' '.join(load)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("BENCH_QUICK") not in (None, "", "0"),
                    help="fewer messages and one run each (also BENCH_QUICK=1)")
    ap.add_argument("--runs", type=int, default=None, help="runs per server and workload")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="comma list of accept,mx,local,idle,pop3,steps,ceiling (default: all)")
    ap.add_argument("--idle", type=int, default=10000, help="idle sessions held at carteiro")
    ap.add_argument("--idle-postfix", type=int, default=1000,
                    help="idle sessions held at Postfix (one smtpd process each; 0: skip)")
    ap.add_argument("--pop3", type=int, default=10000, help="messages downloaded over POP3")
    ap.add_argument("--against", metavar="BINARY",
                    help="accept and local: compare with another carteiro binary instead of "
                    "Postfix (what an optimisation bought)")
    ap.add_argument("--sessions", default="1,20,100", help="smtp-source -s values")
    ap.add_argument("--sizes", default="4096,102400", help="message sizes in bytes")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (make bench does): the servers drop to their own users")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    scale = 0.2 if args.quick else 1.0
    args.scale = scale

    def count(sessions, size):
        base = 1000 if sessions < 5 else 5000
        if size > 8192:
            base //= 2
        return max(100, int(base * scale))

    args.count = count
    args.sessions = [int(x) for x in args.sessions.split(",")]
    args.sizes = [int(x) for x in args.sizes.split(",")]
    if args.against:
        args.reference = lambda root, port, name: servers.Carteiro(
            root, relay_port=port, name=name, binary=os.path.abspath(args.against))
    else:
        args.reference = lambda root, port, name: servers.Postfix(root, relay_port=port,
                                                                  name=name)
    args.e2e_timeout = 300
    if args.quick:
        args.pop3 = min(args.pop3, 10000)
    only = set(filter(None, args.only.split(","))) or \
        {"accept", "mx", "local", "idle", "pop3", "steps", "ceiling"}

    def on_signal(signum, _frame):
        servers.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    root = servers.make_root()
    log(f"directory {root}; {machine_line()}")
    log(f"carteiro {servers.CARTEIRO}; postfix "
        f"{subprocess.run(['/usr/sbin/postconf', '-h', '-d', 'mail_version'], capture_output=True, text=True).stdout.strip()}")
    table = Table()
    t0 = time.monotonic()
    try:
        args.ceilings = {}
        args.with_ceiling = "ceiling" in only
        if "accept" in only:
            bench_accept(args, table, root)
        elif args.with_ceiling:
            bench_ceiling(args, root)
        if "mx" in only:
            bench_e2e_mx(args, table, root)
        if "local" in only:
            bench_local(args, table, root)
        if "idle" in only:
            bench_idle(args, table, root)
        if "pop3" in only:
            bench_pop3(args, table, root)
        if "steps" in only:
            bench_steps(args, table, root)
        if "ceiling" in only:
            for (sessions, size), v in sorted(args.ceilings.items(), key=lambda kv: kv[0][::-1]):
                table.add(f"ceiling {size // 1024} KiB -s {sessions}", "msg/s", None, None, "-",
                          v, "smtp-source -> smtp-sink")
    finally:
        servers.stop_all()
        if not args.keep:
            subprocess.run(["rm", "-rf", root])
    print()
    print(f"carteiro bench, {args.runs} run(s) each, medians; {machine_line()}; "
          f"{time.monotonic() - t0:.0f} s")
    print(table.render())
    if not args.against:
        lines = target_lines(table)
        if lines:
            print()
            print("targets (issue 6), in this run:")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
