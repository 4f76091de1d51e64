"""A real DNS server for the scenario tests: dnsmasq on 127.0.0.1 and a free port.

    from dnsserver import DnsServer

    records = {
        "mx": [("example.test", "mx1.example.test", 10), ("example.test", "mx2.example.test", 20)],
        "a": [("mx1.example.test", "127.0.0.2"), ("mx2.example.test", "127.0.0.3")],
        "aaaa": [("mx1.example.test", "::1")],
        "txt": [("example.test", "v=spf1 ip4:127.0.0.0/8 -all")],
        "cname": [("alias.test", "example.test")],
        "nullmx": ["nomail.test"],             # MX 0 . (RFC 7505)
    }
    with DnsServer(tmpdir, records) as dns:    # started, and answering
        ... carteiro with dns-server = dns.server ("127.0.0.1:PORT") ...
        rcode, answers = dns.query("example.test", "MX")   # a check by hand, if wanted

Every key is optional; a name may have several records of a type (one tuple each). A TXT
record given as a list of strings, ("name", ["part1", "part2"]), is one record of several
character-strings, as a DKIM key longer than 255 bytes is published.
Answers for names under the test zones come only from these records: a name that has none
of them gets NXDOMAIN, a name that has records but not of the type asked gets NODATA
(NOERROR, empty answer). The zones are, unless given as zones=[...], the last label of every
name above ("test"): so make up names under .test. A name outside the zones gets REFUSED
(there is no upstream server), which carteiro treats as a temporary failure.

dnsmasq (Debian package dnsmasq-base) runs in the foreground as a child, with its
configuration in <tmpdir>/dnsmasq.conf and its log (every query) in <tmpdir>/dnsmasq.log
(.log() returns it). stop() ends it (SIGTERM, then SIGKILL); so does the end of the Python
process, should a test forget.

DNS lists (the anti-abuse tests): a list is A and TXT records under a zone such as bl.test;
dnsbl_name("192.0.2.7", "bl.test") gives the name a client is listed under ("7.2.0.192.bl.test",
32 nibbles for IPv6, RFC 5782 2.1 and 2.4). SilentDns is a "server" that takes queries and never
answers, for timeouts.

Only the standard library: the readiness check and query() build DNS messages by hand.
"""
import atexit
import os
import random
import signal
import socket
import struct
import subprocess
import time

DNSMASQ = "/usr/sbin/dnsmasq"
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

_running = set()


@atexit.register
def _stop_all():
    for srv in list(_running):
        srv.stop()


def _free_udp_tcp_port(host="127.0.0.1"):
    """A port free for both UDP and TCP (dnsmasq listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                t.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _quote(text):
    """A dnsmasq TXT string: in double quotes, with \\ and " escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_name(name):
    if not name or any(c in name for c in ",\n\r\" /\\#") or name.startswith("."):
        raise ValueError(f"not a usable DNS name for the fixture: {name!r}")
    return name.rstrip(".")


class DnsServer:
    def __init__(self, tmpdir, records=None, zones=None, host="127.0.0.1"):
        self.dir = tmpdir
        self.records = records or {}
        self.host = host
        self.port = None
        self.proc = None
        unknown = set(self.records) - {"mx", "a", "aaaa", "txt", "cname", "nullmx"}
        if unknown:
            raise ValueError(f"unknown record types: {sorted(unknown)}")
        self.zones = list(zones) if zones is not None else self._default_zones()

    @property
    def server(self):
        """The dns-server value for carteiro: "127.0.0.1:PORT"."""
        return f"{self.host}:{self.port}"

    @property
    def conf_path(self):
        return os.path.join(self.dir, "dnsmasq.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "dnsmasq.log")

    def _names(self):
        r = self.records
        for key in ("mx", "a", "aaaa", "txt", "cname"):
            for rec in r.get(key, []):
                yield rec[0]
                if key in ("mx", "cname"):
                    yield rec[1]
        yield from r.get("nullmx", [])

    def _default_zones(self):
        zones = sorted({n.rstrip(".").rsplit(".", 1)[-1].lower() for n in self._names()})
        return zones or ["test"]

    def _config_lines(self):
        r = self.records
        lines = [
            "keep-in-foreground", "no-resolv", "no-hosts", "no-poll", "bind-interfaces",
            f"listen-address={self.host}", f"port={self.port}",
            f"pid-file={os.path.join(self.dir, 'dnsmasq.pid')}",
            f"log-facility={self.log_path}", "log-queries",
        ]
        if os.geteuid() == 0:
            # As root dnsmasq would switch to "nobody", who may not write the log here.
            lines += ["user=root", "group=root"]
        for zone in self.zones:
            lines.append(f"local=/{_check_name(zone)}/")
        for domain, host, pref in r.get("mx", []):
            lines.append(f"mx-host={_check_name(domain)},{_check_name(host)},{int(pref)}")
        for domain in r.get("nullmx", []):
            lines.append(f"mx-host={_check_name(domain)},.,0")
        for name, ip in r.get("a", []):
            socket.inet_pton(socket.AF_INET, ip)
            lines.append(f"host-record={_check_name(name)},{ip}")
        for name, ip in r.get("aaaa", []):
            socket.inet_pton(socket.AF_INET6, ip)
            lines.append(f"host-record={_check_name(name)},{ip}")
        for name, text in r.get("txt", []):
            # A list of strings is one record of several character-strings (RFC 1035 3.3.14).
            parts = [text] if isinstance(text, str) else list(text)
            lines.append(f"txt-record={_check_name(name)}," + ",".join(_quote(p) for p in parts))
        for alias, target in r.get("cname", []):
            lines.append(f"cname={_check_name(alias)},{_check_name(target)}")
        return lines

    def start(self, timeout=10):
        """Start dnsmasq and wait until it answers a query. Returns self."""
        if self.proc:
            return self
        os.makedirs(self.dir, exist_ok=True)
        last_error = ""
        for _ in range(5):  # the free port may be taken meanwhile: try another
            self.port = _free_udp_tcp_port(self.host)
            with open(self.conf_path, "w") as f:
                f.write("\n".join(self._config_lines()) + "\n")
            self.proc = subprocess.Popen([DNSMASQ, f"--conf-file={self.conf_path}"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
            _running.add(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = self.proc.stderr.read().decode(errors="replace")
                    break
                try:
                    self.query(self.zones[0], "SOA", timeout=0.2)
                    return self
                except (OSError, ValueError):
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"dnsmasq did not start: {last_error.strip()}\n{self.log()[-2000:]}")

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        self.proc = None
        _running.discard(self)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def query(self, name, qtype="A", timeout=2.0):
        """Ask the server over UDP. Returns (rcode name, [(type name, value), ...]).

        Values: A/AAAA the address text, MX (pref, host) with "." for the null MX, CNAME the
        name, TXT the strings joined; other types the raw rdata bytes.
        """
        qid = random.randrange(65536)
        msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name)
        msg += struct.pack(">HH", QTYPES[qtype], 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(msg, (self.host, self.port))
            deadline = time.monotonic() + timeout
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                data = s.recv(65535)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    return _decode_answer(data)


def dnsbl_name(ip, zone):
    """The name under which a DNS list lists the address ip (IPv4 or IPv6) in zone."""
    if ":" in ip:
        nibbles = socket.inet_pton(socket.AF_INET6, ip).hex()
        return ".".join(reversed(nibbles)) + "." + zone
    return ".".join(reversed(ip.split("."))) + "." + zone


class SilentDns:
    """A UDP socket on 127.0.0.1 that receives queries and never answers (nor refuses): a
    resolver pointed at it waits until its own timeout. .server is the dns-server value."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]

    @property
    def server(self):
        return f"{self.host}:{self.port}"

    def queries(self):
        """How many queries have arrived (and been dropped) so far."""
        self.sock.setblocking(False)
        n = 0
        try:
            while True:
                self.sock.recv(65535)
                n += 1
        except BlockingIOError:
            pass
        return n

    def stop(self):
        self.sock.close()


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode()
            if len(raw) > 63:
                raise ValueError("label too long")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def _read_name(data, pos):
    """(name, position after it), following compression pointers."""
    labels, end, jumps = [], None, 0
    while True:
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return (".".join(labels) or "."), (end if end is not None else pos + 1)
        labels.append(data[pos + 1:pos + 1 + n].decode(errors="replace"))
        pos += 1 + n


def _decode_answer(data):
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    pos = 12
    for _ in range(qd):
        _, pos = _read_name(data, pos)
        pos += 4
    names = {v: k for k, v in QTYPES.items()}
    answers = []
    for _ in range(an):
        _, pos = _read_name(data, pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        rdata = data[pos:pos + rdlen]
        if rtype == 1:
            value = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            value = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 15:
            value = (struct.unpack(">H", rdata[:2])[0], _read_name(data, pos + 2)[0])
        elif rtype == 5:
            value = _read_name(data, pos)[0]
        elif rtype == 16:
            parts, i = [], 0
            while i < len(rdata):
                parts.append(rdata[i + 1:i + 1 + rdata[i]].decode(errors="replace"))
                i += 1 + rdata[i]
            value = "".join(parts)
        else:
            value = rdata
        answers.append((names.get(rtype, str(rtype)), value))
        pos += rdlen
    return RCODES.get(flags & 0xF, str(flags & 0xF)), answers
