/*
 * Unit tests of util/punycode.c: the sample strings of RFC 3492 7.1, labels
 * of the Public Suffix List's IDN test vectors, and the limits (63-octet
 * labels, 253-octet names, malformed UTF-8, empty labels).
 */
#include <errno.h>
#include <string.h>

#include "util/punycode.h"
#include "unit.h"

TEST(rfc3492_samples)
{
	static const struct {
		const char *utf8, *puny;
	} cases[] = {
		/* (A) Arabic (Egyptian) */
		{ "\u0644\u064a\u0647\u0645\u0627\u0628\u062a\u0643\u0644\u0645\u0648\u0634"
		  "\u0639\u0631\u0628\u064a\u061f",
		  "egbpdaj6bu4bxfgehfvwxn" },
		/* (B) Chinese (simplified) */
		{ "\u4ed6\u4eec\u4e3a\u4ec0\u4e48\u4e0d\u8bf4\u4e2d\u6587", "ihqwcrb4cv8a8dqg056pqjye" },
		/* (C) Chinese (traditional) */
		{ "\u4ed6\u5011\u7232\u4ec0\u9ebd\u4e0d\u8aaa\u4e2d\u6587", "ihqwctvzc91f659drss3x8bo0yb" },
		/* (D) Czech */
		{ "Pro\u010dprost\u011bnemluv\u00ed\u010desky", "Proprostnemluvesky-uyb24dma41a" },
		/* (L) 3<nen>B<gumi><kinpachi><sensei> : mixed basic and non-basic */
		{ "3\u5e74B\u7d44\u91d1\u516b\u5148\u751f", "3B-ww4c5e180e575a65lsy2b" },
		/* (S) only basic code points: a delimiter all the same */
		{ "-> $1.00 <-", "-> $1.00 <--" },
		{ "b\u00fccher", "bcher-kva" },
		{ "\u98df\u72ee", "85x722f" },
		{ "\u516c\u53f8", "55qx5d" },
		{ "\u4e2d\u56fd", "fiqs8s" },
		/* A code point past the BMP. */
		{ "\U0001F600", "e28h" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = punycode_encode(slice_from_cstr(cases[i].utf8), out, sizeof out);
		CHECK_INT(r, 0);
		CHECK_STR(out, cases[i].puny);
	}
}

TEST(encode_limits)
{
	char out[64], label[256];

	CHECK_INT(punycode_encode(slice_from_cstr(""), out, sizeof out), -EINVAL);
	CHECK_INT(punycode_encode(slice_from_cstr("\xc3"), out, sizeof out), -EINVAL);
	CHECK_INT(punycode_encode(slice_from_cstr("a\xc0\x80"), out, sizeof out), -EINVAL);
	CHECK_INT(punycode_encode(slice_from_cstr("\xed\xa0\x80"), out, sizeof out), -EINVAL);
	CHECK_STR(out, "");
	/* 62 ASCII letters and the delimiter: exactly 63. */
	memset(label, 'a', 62);
	label[62] = '\0';
	CHECK_INT(punycode_encode(slice_from_cstr(label), out, sizeof out), 0);
	CHECK_INT((long long)strlen(out), 63);
	label[62] = 'a';
	label[63] = '\0';
	CHECK_INT(punycode_encode(slice_from_cstr(label), out, sizeof out), -ENAMETOOLONG);
	/* Each code point costs at least one character: 63 fit, 64 do not. */
	for (size_t i = 0; i < 64; i++)
		memcpy(label + 2 * i, "\xc3\xbc", 2);
	label[128] = '\0';
	CHECK_INT(punycode_encode(slice_from_cstr(label), out, sizeof out), -ENAMETOOLONG);
	/* Distant code points cost more: U+4E00 + 997 i for i < 21 encode in exactly 63
	 * characters (as Python's punycode codec says), 22 of them in 66. */
	for (size_t i = 0; i < 22; i++) {
		unsigned cp = 0x4e00 + 997 * (unsigned)i;
		label[3 * i] = (char)(0xe0 | (cp >> 12));
		label[3 * i + 1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		label[3 * i + 2] = (char)(0x80 | (cp & 0x3f));
	}
	CHECK_INT(punycode_encode((struct slice){ label, 63 }, out, sizeof out), 0);
	CHECK_STR(out, "4gqu8gq5d73ep1f60gorh5tinnj46jm7k3wllwm2inkho19ojtp0qqiorzlshjt");
	CHECK_INT(punycode_encode((struct slice){ label, 66 }, out, sizeof out), -ENAMETOOLONG);
	/* An output buffer too small. */
	CHECK_INT(punycode_encode(slice_from_cstr("b\u00fccher"), out, 5), -ENAMETOOLONG);
}

TEST(domain_to_ascii)
{
	static const struct {
		const char *in, *out;
		int r;
	} cases[] = {
		{ "Example.COM", "example.com", 0 },
		{ "www.\u98df\u72ee.\u516c\u53f8.cn", "www.xn--85x722f.xn--55qx5d.cn", 0 },
		{ "B\u00fccher.example", "xn--bcher-kva.example", 0 },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example", 0 },
		{ "", "", -EINVAL },
		{ ".example", "", -EINVAL },
		{ "example.", "", -EINVAL },
		{ "a..b", "", -EINVAL },
		{ "\xff.example", "", -EINVAL },
		{ "exa\tmple.com", "", -EINVAL },
		{ "example.co\x7f", "", -EINVAL },
	};
	char out[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = punycode_domain_to_ascii(slice_from_cstr(cases[i].in), out, sizeof out);
		CHECK_MSG(r == cases[i].r, "%s: %d", cases[i].in, r);
		CHECK_STR(out, cases[i].out);
	}
}

TEST(domain_length_limits)
{
	char in[600], out[300];
	size_t n = 0;

	/* 63-octet labels: four of them with dots make 255 > 253. */
	for (int l = 0; l < 4; l++) {
		if (l)
			in[n++] = '.';
		memset(in + n, 'a' + l, 63);
		n += 63;
	}
	in[n] = '\0';
	CHECK_INT(punycode_domain_to_ascii(slice_from_cstr(in), out, sizeof out), -ENAMETOOLONG);
	CHECK_STR(out, "");
	/* 253 exactly: 63.63.63.61 */
	in[n - 2] = '\0';
	CHECK_INT(punycode_domain_to_ascii(slice_from_cstr(in), out, sizeof out), 0);
	CHECK_INT((long long)strlen(out), 253);
	/* A NUL inside the name would cut the output short: refused. */
	CHECK_INT(punycode_domain_to_ascii((struct slice){ "ex\0mple.com", 11 }, out, sizeof out),
		  -EINVAL);
	CHECK_STR(out, "");
	/* The caller's buffer is the other limit. */
	CHECK_INT(punycode_domain_to_ascii(slice_from_cstr("example.com"), out, 11),
		  -ENAMETOOLONG);
	CHECK_INT(punycode_domain_to_ascii(slice_from_cstr("example.com"), out, 12), 0);
	/* A 64-octet label. */
	memset(in, 'x', 64);
	in[64] = '\0';
	CHECK_INT(punycode_domain_to_ascii(slice_from_cstr(in), out, sizeof out), -ENAMETOOLONG);
}

UNIT_MAIN()
