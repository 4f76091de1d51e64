import socket, struct, sys
sys.path.insert(0, "/tmp/dnsprobe")
def q(name, qtype=15, port=53533):
    msg = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for l in name.split("."): msg += bytes([len(l)]) + l.encode()
    msg += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(msg, ("127.0.0.1", port)); return s.recvfrom(4096)[0]
d = "/work/wt-dns/fuzz/corpus/dns_mx/"
for fn, name in [("mx_three_prefs", "example.test"), ("mx_null", "nullmx.test"), ("nodata", "nomx.test"),
                 ("nxdomain", "unknown.test"), ("mx_via_cname", "alias.test")]:
    open(d + fn, "wb").write(q(name))
def name(n):
    out = b""
    for l in n.split(b"."):
        if l: out += bytes([len(l)]) + l
    return out + b"\0"
def mx_answer(recs):
    m = struct.pack(">HHHHHH", 1, 0x8180, 1, len(recs), 0, 0) + name(b"example.test") + struct.pack(">HH", 15, 1)
    for pref, host in recs:
        rd = struct.pack(">H", pref) + host
        m += struct.pack(">HHHIH", 0xc00c, 15, 1, 300, len(rd)) + rd
    return m
open(d + "mx_invalid_names", "wb").write(mx_answer([(10, name(b"bad_name.test")), (20, name(b"-x.test")),
    (30, name(b"192.0.2.1")), (40, b"\x07dot.ins\x04test\x00"), (50, name(b"ok.example.test"))]))
open(d + "mx_compressed_ties", "wb").write(mx_answer([(10, b"\x02mx\xc0\x0c"), (10, b"\x03mx2\xc0\x0c"), (10, b"\x02MX\xc0\x0c"), (0, b"\x03mx0\xc0\x0c")]))
