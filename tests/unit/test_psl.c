/*
 * Unit tests of policy/psl.c: the Public Suffix List project's own test
 * vectors (checkPublicSuffix() of tests/test_psl.txt, as of the list Debian 12
 * ships: city.kobe.jp is an exception there) against Debian's list, the
 * organizational domains of RFC 7489 3.2, and the loader's rules and refusals
 * on small lists written here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy/psl.h"
#include "unit.h"

static struct psl *debian_list(void)
{
	static struct psl *psl;
	char err[256];

	if (!psl) {
		psl = psl_load(PSL_DEFAULT_PATH, err, sizeof err);
		if (!psl)
			fprintf(stderr, "  cannot load %s: %s\n", PSL_DEFAULT_PATH, err);
	}
	return psl;
}

/*
 * checkPublicSuffix(domain, registrable): the registrable domain is what RFC 7489
 * calls the organizational domain; NULL when there is none (the name is a public
 * suffix itself, or not a valid name).
 */
static const struct {
	const char *domain, *org;
} vectors[] = {
	/* checkPublicSuffix(null, null) is the -EINVAL of a NULL name: see null_and_bad_names. */
	/* Mixed case. */
	{ "COM", NULL },
	{ "example.COM", "example.com" },
	{ "WwW.example.COM", "example.com" },
	/* Leading dot. */
	{ ".com", NULL },
	{ ".example", NULL },
	{ ".example.com", NULL },
	{ ".example.example", NULL },
	/* Unlisted TLD. */
	{ "example", NULL },
	{ "example.example", "example.example" },
	{ "b.example.example", "example.example" },
	{ "a.b.example.example", "example.example" },
	/* TLD with only 1 rule. */
	{ "biz", NULL },
	{ "domain.biz", "domain.biz" },
	{ "b.domain.biz", "domain.biz" },
	{ "a.b.domain.biz", "domain.biz" },
	/* TLD with some 2-level rules. */
	{ "com", NULL },
	{ "example.com", "example.com" },
	{ "b.example.com", "example.com" },
	{ "a.b.example.com", "example.com" },
	{ "uk.com", NULL },
	{ "example.uk.com", "example.uk.com" },
	{ "b.example.uk.com", "example.uk.com" },
	{ "a.b.example.uk.com", "example.uk.com" },
	{ "test.ac", "test.ac" },
	/* TLD with only 1 (wildcard) rule. */
	{ "mm", NULL },
	{ "c.mm", NULL },
	{ "b.c.mm", "b.c.mm" },
	{ "a.b.c.mm", "b.c.mm" },
	/* More complex TLD. */
	{ "jp", NULL },
	{ "test.jp", "test.jp" },
	{ "www.test.jp", "test.jp" },
	{ "ac.jp", NULL },
	{ "test.ac.jp", "test.ac.jp" },
	{ "www.test.ac.jp", "test.ac.jp" },
	{ "kyoto.jp", NULL },
	{ "test.kyoto.jp", "test.kyoto.jp" },
	{ "ide.kyoto.jp", NULL },
	{ "b.ide.kyoto.jp", "b.ide.kyoto.jp" },
	{ "a.b.ide.kyoto.jp", "b.ide.kyoto.jp" },
	{ "c.kobe.jp", NULL },
	{ "b.c.kobe.jp", "b.c.kobe.jp" },
	{ "a.b.c.kobe.jp", "b.c.kobe.jp" },
	{ "city.kobe.jp", "city.kobe.jp" },
	{ "www.city.kobe.jp", "city.kobe.jp" },
	/* TLD with a wildcard rule and exceptions. */
	{ "ck", NULL },
	{ "test.ck", NULL },
	{ "b.test.ck", "b.test.ck" },
	{ "a.b.test.ck", "b.test.ck" },
	{ "www.ck", "www.ck" },
	{ "www.www.ck", "www.ck" },
	/* US K12. */
	{ "us", NULL },
	{ "test.us", "test.us" },
	{ "www.test.us", "test.us" },
	{ "ak.us", NULL },
	{ "test.ak.us", "test.ak.us" },
	{ "www.test.ak.us", "test.ak.us" },
	{ "k12.ak.us", NULL },
	{ "test.k12.ak.us", "test.k12.ak.us" },
	{ "www.test.k12.ak.us", "test.k12.ak.us" },
	/* IDN labels. */
	{ "食狮.com.cn", "食狮.com.cn" },
	{ "食狮.公司.cn", "食狮.公司.cn" },
	{ "www.食狮.公司.cn", "食狮.公司.cn" },
	{ "shishi.公司.cn", "shishi.公司.cn" },
	{ "公司.cn", NULL },
	{ "食狮.中国", "食狮.中国" },
	{ "www.食狮.中国", "食狮.中国" },
	{ "shishi.中国", "shishi.中国" },
	{ "中国", NULL },
	/* Same as above, but punycoded. */
	{ "xn--85x722f.com.cn", "xn--85x722f.com.cn" },
	{ "xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn" },
	{ "www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn" },
	{ "shishi.xn--55qx5d.cn", "shishi.xn--55qx5d.cn" },
	{ "xn--55qx5d.cn", NULL },
	{ "xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s" },
	{ "www.xn--85x722f.xn--fiqs8s", "xn--85x722f.xn--fiqs8s" },
	{ "shishi.xn--fiqs8s", "shishi.xn--fiqs8s" },
	{ "xn--fiqs8s", NULL },
};

TEST(check_public_suffix_vectors)
{
	struct psl *psl = debian_list();
	char out[256];

	CHECK(psl != NULL);
	if (!psl)
		return;
	CHECK(psl_count(psl) > 9000);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		int r = psl_org_domain(psl, vectors[i].domain, out, sizeof out);
		if (vectors[i].org) {
			CHECK_MSG(r == 0 && strcmp(out, vectors[i].org) == 0,
				  "%s: %d '%s', expected '%s'", vectors[i].domain, r, out,
				  vectors[i].org);
		} else {
			CHECK_MSG(r == -ENOENT || r == -EINVAL, "%s: %d '%s', expected none",
				  vectors[i].domain, r, out);
			CHECK_STR(out, "");
		}
	}
}

TEST(null_and_bad_names)
{
	struct psl *psl = debian_list();
	char out[256], name[300];

	if (!psl)
		return;
	CHECK_INT(psl_org_domain(psl, NULL, out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, ".com", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "example.com.", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "a..example.com", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "a b.example.com", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "a\tb.example.com", out, sizeof out), -EINVAL);
	/* '*' and '!' would read as a wildcard or exception key. */
	CHECK_INT(psl_org_domain(psl, "*.ck", out, sizeof out), -EINVAL);
	CHECK_INT(psl_org_domain(psl, "!www.ck", out, sizeof out), -EINVAL);
	/* A 64-octet label; a 254-octet name. */
	memset(name, 'a', 64);
	strcpy(name + 64, ".com");
	CHECK_INT(psl_org_domain(psl, name, out, sizeof out), -EINVAL);
	strcpy(name + 63, ".com");
	CHECK_INT(psl_org_domain(psl, name, out, sizeof out), 0);
	CHECK_STR(out, name);
	for (size_t i = 0; i < 127; i++) {
		name[2 * i] = 'a';
		name[2 * i + 1] = '.';
	}
	strcpy(name + 250, "com");
	CHECK_INT((long long)strlen(name), 253);
	CHECK_INT(psl_org_domain(psl, name, out, sizeof out), 0);
	CHECK_STR(out, "a.com");
	strcpy(name + 250, "coms");
	CHECK_INT(psl_org_domain(psl, name, out, sizeof out), -EINVAL);
	/* Output too small. */
	CHECK_INT(psl_org_domain(psl, "www.example.com", out, 11), -ENAMETOOLONG);
	CHECK_INT(psl_org_domain(psl, "www.example.com", out, 12), 0);
}

TEST(org_domains_of_rfc7489)
{
	static const struct {
		const char *domain, *org, *suffix;
	} cases[] = {
		{ "example.com", "example.com", "com" },
		{ "mail.example.com", "example.com", "com" },
		{ "a.b.c.example.co.uk", "example.co.uk", "co.uk" },
		{ "example.co.uk", "example.co.uk", "co.uk" },
		{ "bank.co.uk", "bank.co.uk", "co.uk" },
		/* Private section entries are public suffixes too. */
		{ "alice.blogspot.com", "alice.blogspot.com", "blogspot.com" },
		{ "x.alice.blogspot.com", "alice.blogspot.com", "blogspot.com" },
		{ "Mail.Example.ORG", "example.org", "org" },
		{ "b\xc3\xbc" "cher.example.de", "example.de", "de" },
	};
	struct psl *psl = debian_list();
	char out[256];

	if (!psl)
		return;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_INT(psl_org_domain(psl, cases[i].domain, out, sizeof out), 0);
		CHECK_STR(out, cases[i].org);
		CHECK_INT(psl_public_suffix(psl, cases[i].domain, out, sizeof out), 0);
		CHECK_STR(out, cases[i].suffix);
	}
	CHECK_INT(psl_org_domain(psl, "co.uk", out, sizeof out), -ENOENT);
	CHECK_INT(psl_public_suffix(psl, "co.uk", out, sizeof out), 0);
	CHECK_STR(out, "co.uk");
	CHECK_INT(psl_org_domain(psl, "blogspot.com", out, sizeof out), -ENOENT);
}

static const char small_list[] =
	"// a list in the format of publicsuffix.org\r\n"
	"// ===BEGIN ICANN DOMAINS===\n"
	"com\n"
	"uk\n"
	"co.uk   this is a comment after the rule\n"
	"\n"
	"*.ck\n"
	"!www.ck\n"
	"*.kawasaki.jp\n"
	"!city.kawasaki.jp\n"
	"jp\n"
	"a.b.c.deep\n"
	"\xe5\x85\xac\xe5\x8f\xb8.cn\n"
	"   indented.example   \n"
	"// ===END ICANN DOMAINS===\n"
	"// ===BEGIN PRIVATE DOMAINS===\n"
	"blogspot.com\n"
	"bad..rule\n"
	"a.*.b\n"
	"!single\n"
	"*\n"
	".leading\n"
	"// ===END PRIVATE DOMAINS===\n";

TEST(small_list_rules)
{
	static const struct {
		const char *domain, *org;
		int r;
	} cases[] = {
		{ "example.com", "example.com", 0 },
		{ "x.example.co.uk", "example.co.uk", 0 },
		{ "co.uk", "", -ENOENT },
		{ "uk", "", -ENOENT },
		{ "x.ck", "", -ENOENT },
		{ "a.x.ck", "a.x.ck", 0 },
		{ "www.ck", "www.ck", 0 },
		{ "a.www.ck", "www.ck", 0 },
		{ "city.kawasaki.jp", "city.kawasaki.jp", 0 },
		{ "www.city.kawasaki.jp", "city.kawasaki.jp", 0 },
		{ "other.kawasaki.jp", "", -ENOENT },
		/* A deep rule without its parents: "deep" is covered by "*" only. */
		{ "x.a.b.c.deep", "x.a.b.c.deep", 0 },
		{ "b.c.deep", "c.deep", 0 },
		{ "x.xn--55qx5d.cn", "x.xn--55qx5d.cn", 0 },
		{ "x.\xe5\x85\xac\xe5\x8f\xb8.cn", "x.\xe5\x85\xac\xe5\x8f\xb8.cn", 0 },
		{ "a.indented.example", "a.indented.example", 0 },
		{ "a.blogspot.com", "a.blogspot.com", 0 },
		{ "unknown", "", -ENOENT },
		{ "a.unknown", "a.unknown", 0 },
		/* The skipped rules did not enter. */
		{ "x.a.z.b", "z.b", 0 },
		{ "x.single", "x.single", 0 },
	};
	char err[200], out[256];
	struct psl *psl = psl_parse(small_list, sizeof small_list - 1, err, sizeof err);

	CHECK(psl != NULL);
	if (!psl)
		return;
	CHECK_INT(psl_count(psl), 12);
	CHECK_INT(psl_skipped(psl), 5);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = psl_org_domain(psl, cases[i].domain, out, sizeof out);
		CHECK_MSG(r == cases[i].r && strcmp(out, cases[i].org) == 0,
			  "%s: %d '%s', expected %d '%s'", cases[i].domain, r, out, cases[i].r,
			  cases[i].org);
	}
	psl_free(psl);
}

TEST(refuses_what_is_not_a_list)
{
	static const char truncated[] = "// ===BEGIN ICANN DOMAINS===\ncom\nco.uk\n";
	static const char empty[] = "// ===BEGIN ICANN DOMAINS===\n// ===END ICANN DOMAINS===\n";
	char err[200];

	CHECK(psl_parse(truncated, sizeof truncated - 1, err, sizeof err) == NULL);
	CHECK(strstr(err, "truncated") != NULL);
	CHECK(psl_parse(empty, sizeof empty - 1, err, sizeof err) == NULL);
	CHECK(strstr(err, "no rules") != NULL);
	CHECK(psl_parse("", 0, err, sizeof err) == NULL);
	CHECK(psl_load("/nonexistent/psl.dat", err, sizeof err) == NULL);
	CHECK(strstr(err, "/nonexistent/psl.dat") != NULL);
	CHECK(strstr(err, "No such file") != NULL);
}

UNIT_MAIN()
