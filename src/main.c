/*
 * carteiro: the command line. Subcommands:
 *
 *   carteiro serve [-c FILE | --demo] [--syslog] [--debug]   run the server (foreground)
 *   carteiro check [-c FILE | --demo]                         validate a configuration
 *   carteiro queue list [-c FILE | --demo]                    show the queue
 *   carteiro queue show|flush|delete|hold|release|bounce ID   control the running queue
 *   carteiro passwd                                           hash a password (yescrypt)
 *   carteiro dkim-keygen DOMAIN SELECTOR [rsa|ed25519] [-o FILE] [-b BITS]
 *                                                             a DKIM key and its DNS record
 *   carteiro help [config | demo-config]                      usage, keys, demo config
 *   carteiro --version
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/demo.h"
#include "conf/version.h"
#include "deliver/relay_auth.h"
#include "mail/addr.h"
#include "mail/aliases.h"
#include "mail/password.h"
#include "mail/sasl.h"
#include "mail/users.h"
#include "master/master.h"
#include "policy/dkim.h"
#include "policy/policy_lists.h"
#include "policy/psl.h"
#include "queue/queue_control.h"
#include "queue/queue_file.h"
#include "queue/queue_list.h"
#include "smtpd/smtp_server.h"
#include "tls/tls_server.h"
#include "util/log.h"
#include "util/str.h"
#include "util/fileio.h"

#define DEFAULT_CONFIG "/etc/carteiro/carteiro.conf"

static const char usage_text[] =
	"usage: carteiro <command> [options]\n"
	"\n"
	"commands:\n"
	"  serve [-c FILE | --demo] [--syslog] [--debug]\n"
	"                      run the mail server in the foreground (logs to stderr)\n"
	"  check [-c FILE | --demo]\n"
	"                      validate a configuration, its users and aliases files and\n"
	"                      its TLS certificates and keys\n"
	"  queue list [-c FILE | --demo]\n"
	"                      show the messages in the queue\n"
	"  queue show|flush|delete|hold|release|bounce ID [-c FILE | --demo]\n"
	"                      one message: details; retry now; remove; put aside; take back;\n"
	"                      return to the sender\n"
	"  passwd              read a password (terminal: asked twice, no echo; else one\n"
	"                      line of stdin) and print its yescrypt hash for the users file\n"
	"  dkim-keygen DOMAIN SELECTOR [rsa|ed25519] [-o FILE] [-b BITS]\n"
	"                      write a new DKIM private key (RSA 2048 by default, mode\n"
	"                      0600, default file ./SELECTOR.DOMAIN.key) and print the DNS\n"
	"                      TXT record to publish and the dkim-sign line to configure\n"
	"  help [config | demo-config]\n"
	"                      this text, the configuration keys, or the demo configuration\n"
	"  --version           print the version\n"
	"\n"
	"-c FILE defaults to " DEFAULT_CONFIG "; --demo uses the built-in demo\n"
	"configuration (SMTP on 127.0.0.1:2525, submission on 2587 and 2465, files\n"
	"under ./run/).\n";

struct cli {
	const char *config_path;
	bool demo;
	bool syslog;
	bool debug;
};

static int parse_options(int argc, char **argv, struct cli *cli, bool serve)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "demo", no_argument, NULL, 'D' },
		{ "syslog", no_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli->config_path = optarg;
			break;
		case 'D':
			cli->demo = true;
			break;
		case 's':
		case 'd':
			if (!serve)
				goto bad;
			if (c == 's')
				cli->syslog = true;
			else
				cli->debug = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	if (optind != argc || (cli->demo && cli->config_path))
		goto bad;
	if (!cli->demo && !cli->config_path)
		cli->config_path = DEFAULT_CONFIG;
	return 0;
bad:
	fputs(usage_text, stderr);
	return -1;
}

/* Parse the configuration named by the options; errors go to stderr. Returns the count. */
static unsigned parse_config(const struct cli *cli, struct config *cfg)
{
	config_init(cfg);
	if (cli->demo)
		return config_parse(cfg, "<demo>", config_demo_text, strlen(config_demo_text),
				    config_report_stdio, stderr);
	return config_load_file(cfg, cli->config_path, config_report_stdio, stderr);
}

static void report_count(unsigned errors, const char *what)
{
	fprintf(stderr, "carteiro: %u error%s in the %s\n", errors, errors == 1 ? "" : "s", what);
}

/* Load the configuration; on any error, report and free it. */
static int load_config(const struct cli *cli, struct config *cfg)
{
	unsigned errors = parse_config(cli, cfg);
	if (errors) {
		report_count(errors, "configuration");
		config_free(cfg);
		return -1;
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config cfg;

	if (parse_options(argc, argv, &cli, true) < 0 || load_config(&cli, &cfg) < 0)
		return 1;
	log_init("master", true, cli.syslog || cfg.syslog, cli.debug ? LVL_DEBUG : cfg.log_level);
	if (cli.demo) {
		long uid, gid;
		if (master_lookup_user(&cfg, &uid, &gid) < 0) {
			fprintf(stderr,
				"carteiro: running as root needs the user '%s': create it with "
				"`useradd --system --no-create-home --shell /usr/sbin/nologin %s`\n",
				cfg.user, cfg.user);
			config_free(&cfg);
			return 1;
		}
		cfg.demo = true;
		int r = demo_prepare(&cfg, uid, gid);
		if (r < 0) {
			fprintf(stderr, "carteiro: cannot prepare ./run/: %s\n", strerror(-r));
			config_free(&cfg);
			return 1;
		}
	}
	int status = master_main(&cfg);
	config_free(&cfg);
	return status;
}

static void warn_stderr(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "warning: %s\n", msg);
}

static int cmd_check(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config cfg;
	struct userdb *users = NULL;
	struct aliasdb *aliases = NULL;

	if (parse_options(argc, argv, &cli, false) < 0)
		return 1;
	/* Every error of every file at once: the tables are checked even after config errors. */
	unsigned errors = parse_config(&cli, &cfg);
	if (cli.demo) {
		/* The demo's files are made by `serve --demo`; check only what exists. */
		if (cfg.users_file && access(cfg.users_file, F_OK) != 0) {
			free(cfg.users_file);
			cfg.users_file = NULL;
		}
		if (cfg.aliases_file && access(cfg.aliases_file, F_OK) != 0) {
			free(cfg.aliases_file);
			cfg.aliases_file = NULL;
		}
	}
	int maps = smtpd_load_maps(&cfg, config_report_stdio, stderr, &users, &aliases);
	struct policy_lists *lists = NULL;
	if (policy_lists_load(&cfg, config_report_stdio, stderr, &lists) < 0 && maps == 0) {
		userdb_free(users);
		aliasdb_free(aliases);
		maps = -EINVAL;
	}
	policy_lists_free(lists);
	if (cfg.relayhost_auth_file) {
		struct relay_auth ra = { 0 };
		char err[128];
		if (relay_auth_load(cfg.relayhost_auth_file, &ra, err, sizeof err) < 0) {
			fprintf(stderr, "%s: %s\n", cfg.relayhost_auth_file, err);
			errors++;
		} else if (ra.exposed) {
			fprintf(stderr, "%s: warning: readable by others; chmod 600\n",
				cfg.relayhost_auth_file);
		}
		relay_auth_free(&ra);
	}
	/* DKIM keys as the master will read them. */
	struct dkim_signer_set *dkim = NULL;
	char dkim_err[512];
	if (dkim_signer_set_load(&cfg, &dkim, warn_stderr, NULL, dkim_err, sizeof dkim_err) < 0) {
		fprintf(stderr, "%s: %s\n", cli.demo ? "<demo>" : cli.config_path, dkim_err);
		errors++;
	}
	dkim_signer_set_free(dkim);
	/* The Public Suffix List that DMARC's organizational domains come from. */
	if (cfg.dmarc) {
		char err[PATH_MAX + 128];
		struct psl *psl = psl_load(cfg.public_suffix_list, err, sizeof err);
		if (!psl) {
			fprintf(stderr, "%s: public-suffix-list: %s\n",
				cli.demo ? "<demo>" : cli.config_path, err);
			errors++;
		}
		psl_free(psl);
	}
	/* Certificates and keys as the server will load them: unreadable, broken, mismatched. */
	struct tls_server *tls = NULL;
	char tls_err[TLS_ERROR_MAX];
	bool demo_tls_missing = cli.demo && cfg.tls_certs.n && access(cfg.tls_certs.items[0], F_OK);
	if (!errors && !demo_tls_missing && tls_server_load(&cfg, &tls, tls_err, sizeof tls_err) < 0) {
		fprintf(stderr, "%s: %s\n", cli.demo ? "<demo>" : cli.config_path, tls_err);
		errors++;
	}
	tls_server_free(tls);
	if (errors || maps < 0) {
		if (errors)
			report_count(errors, "configuration");
		if (maps == 0) {
			userdb_free(users);
			aliasdb_free(aliases);
		}
		config_free(&cfg);
		return 1;
	}
	printf("%s: OK (%zu listener%s, %zu local domain%s, %zu user%s, %zu alias%s)\n",
	       cli.demo ? "<demo>" : cli.config_path, cfg.nlistens, cfg.nlistens == 1 ? "" : "s",
	       cfg.nlocal_domains, cfg.nlocal_domains == 1 ? "" : "s", userdb_count(users),
	       userdb_count(users) == 1 ? "" : "s", aliasdb_count(aliases),
	       aliasdb_count(aliases) == 1 ? "" : "es");
	userdb_free(users);
	aliasdb_free(aliases);
	config_free(&cfg);
	return 0;
}

static const char queue_usage[] =
	"usage: carteiro queue list [-c FILE | --demo]\n"
	"       carteiro queue show|flush|delete|hold|release|bounce ID [-c FILE | --demo]\n"
	"       carteiro queue flush [-c FILE | --demo]\n";

/* Print the header section of a queued (or held) message, escaped. */
static void print_headers(const char *spool, const char *id)
{
	char path[PATH_MAX];
	struct envelope env;
	int fd = -1;
	for (int i = 0; i < 2 && fd < 0; i++) {
		snprintf(path, sizeof path, "%s/%s/%s", spool, i ? "hold" : "queue", id);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return;
	envelope_init(&env);
	if (queue_file_read_envelope(fd, &env) == 0) {
		char buf[64 * 1024];
		uint64_t total = envelope_msg_total(&env);
		size_t want = total < sizeof buf ? (size_t)total : sizeof buf, got = 0;
		ssize_t n = 0;
		while (got < want &&
		       (n = pread_joined(fd, env.pre_offset, env.pre_size, env.msg_offset, buf + got,
					 want - got, got)) > 0)
			got += (size_t)n;
		n = (ssize_t)got;
		fputs("headers:\n", stdout);
		for (ssize_t i = 0, start = 0; n > 0 && i < n; i++) {
			if (buf[i] != '\n')
				continue;
			size_t len = (size_t)(i - start);
			if (len > 0 && buf[start + (ssize_t)len - 1] == '\r')
				len--;
			if (len == 0)
				break;
			char line[1024];
			printf("  %s\n", str_display(line, sizeof line, buf + start, len));
			start = i + 1;
		}
	}
	envelope_free(&env);
	close(fd);
}

static int cmd_queue(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config cfg;
	static const char *const verbs[] = { "list", "show", "flush", "delete",
					     "hold", "release", "bounce" };
	const char *verb = argc >= 2 ? argv[1] : "";
	const char *id = NULL;
	bool known = false;

	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		known = known || strcmp(verb, verbs[i]) == 0;
	/* The queue id is the word after the verb; the options follow. */
	int skip = 1; /* argv[skip] stands for the program name of the options */
	if (known && argc >= 3 && argv[2][0] != '-') {
		id = argv[2];
		skip = 2;
	}
	bool needs_id = strcmp(verb, "list") != 0 && strcmp(verb, "flush") != 0;
	if (!known || (needs_id && !id) || (id && strcmp(verb, "list") == 0)) {
		fputs(queue_usage, stderr);
		return 1;
	}
	if (id && !queue_id_valid(id)) {
		fprintf(stderr, "carteiro: '%s' is not a queue id\n", LOG_ESC(id));
		return 1;
	}
	if (parse_options(argc - skip, argv + skip, &cli, false) < 0 ||
	    load_config(&cli, &cfg) < 0)
		return 1;
	int r = queue_control_request(cfg.spool, verb, id, stdout);
	if (r < 0 && strcmp(verb, "list") == 0) {
		/* No server: read the files. */
		printf("(the server is not running: %s; listing the spool's files)\n", strerror(-r));
		r = queue_list(cfg.spool, stdout);
		if (r < 0)
			fprintf(stderr, "carteiro: cannot read the spool %s: %s\n", cfg.spool,
				strerror(-r));
	} else if (r < 0) {
		fprintf(stderr, "carteiro: cannot reach the server through %s/control.sock: %s\n",
			cfg.spool, strerror(-r));
	} else if (r == 0 && strcmp(verb, "show") == 0) {
		print_headers(cfg.spool, id);
	}
	config_free(&cfg);
	return r == 0 ? 0 : 1;
}

/* One line from fd into buf (no line end); false at EOF with nothing read or when too long. */
static bool read_password_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	char c;
	ssize_t r;

	while ((r = read(fd, &c, 1)) == 1 && c != '\n') {
		if (n + 1 >= len)
			return false;
		buf[n++] = c;
	}
	if (r < 0 || (r == 0 && n == 0))
		return false;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return true;
}

/* Ask on the terminal without echo. */
static bool ask_password(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	bool ok;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return false;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	ok = read_password_line(STDIN_FILENO, buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return ok;
}

static int cmd_passwd(int argc, char **argv)
{
	char pw[SASL_PASSWORD_MAX + 2], again[SASL_PASSWORD_MAX + 2], hash[PASSWORD_HASH_MAX];
	int status = 1;
	(void)argv;

	if (argc > 1) {
		fputs("usage: carteiro passwd  (reads the password from the terminal or stdin)\n",
		      stderr);
		return 1;
	}
	if (isatty(STDIN_FILENO)) {
		if (!ask_password("Password: ", pw, sizeof pw) ||
		    !ask_password("Again: ", again, sizeof again)) {
			fputs("carteiro: no password read\n", stderr);
			goto out;
		}
		if (strcmp(pw, again) != 0) {
			fputs("carteiro: the passwords differ\n", stderr);
			goto out;
		}
	} else if (!read_password_line(STDIN_FILENO, pw, sizeof pw)) {
		fputs("carteiro: no password on stdin (or longer than 1024 bytes)\n", stderr);
		goto out;
	}
	if (pw[0] == '\0' || strlen(pw) > SASL_PASSWORD_MAX) {
		fputs("carteiro: the password must be 1 to 1024 bytes\n", stderr);
		goto out;
	}
	int r = password_hash(pw, hash, sizeof hash);
	if (r < 0) {
		fprintf(stderr, "carteiro: cannot hash: %s\n", strerror(-r));
		goto out;
	}
	printf("%s\n", hash);
	status = 0;
out:
	explicit_bzero(pw, sizeof pw);
	explicit_bzero(again, sizeof again);
	return status;
}

static const char dkim_keygen_usage[] =
	"usage: carteiro dkim-keygen DOMAIN SELECTOR [rsa|ed25519] [-o FILE] [-b BITS]\n"
	"  writes a new private key to FILE (default ./SELECTOR.DOMAIN.key, mode 0600,\n"
	"  never overwritten); RSA keys have BITS bits (default 2048)\n";

static int cmd_dkim_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "bits", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	unsigned long bits = 2048;
	char defpath[PATH_MAX], err[512], *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			path = optarg;
			break;
		case 'b':
			errno = 0;
			bits = strtoul(optarg, &end, 10);
			if (errno || *end || bits < 1024 || bits > 8192) {
				fputs("carteiro: -b takes 1024 to 8192 bits\n", stderr);
				return 1;
			}
			break;
		case 'h':
			fputs(dkim_keygen_usage, stdout);
			return 0;
		default:
			fputs(dkim_keygen_usage, stderr);
			return 1;
		}
	}
	int nargs = argc - optind;
	if (nargs < 2 || nargs > 3) {
		fputs(dkim_keygen_usage, stderr);
		return 1;
	}
	const char *domain = argv[optind], *selector = argv[optind + 1];
	const char *type = nargs == 3 ? argv[optind + 2] : "rsa";
	if (!addr_domain_valid(slice_from_cstr(domain), false)) {
		fprintf(stderr, "carteiro: '%s' is not a domain name\n", LOG_ESC(domain));
		return 1;
	}
	if (!dkim_selector_valid(slice_from_cstr(selector))) {
		fprintf(stderr, "carteiro: '%s' is not a selector (letters, digits, '-', '_' and "
			"dots, at most 63)\n", LOG_ESC(selector));
		return 1;
	}
	enum dkim_key_type kt;
	if (strcmp(type, "rsa") == 0) {
		kt = DKIM_KEY_RSA;
	} else if (strcmp(type, "ed25519") == 0) {
		kt = DKIM_KEY_ED25519;
	} else {
		fputs(dkim_keygen_usage, stderr);
		return 1;
	}
	char lower[ADDR_DOMAIN_MAX + 1];
	str_copy(lower, sizeof lower, domain);
	str_lower(lower);
	if (!path) {
		snprintf(defpath, sizeof defpath, "%s.%s.key", selector, lower);
		path = defpath;
	}
	struct buf record, zone;
	buf_init(&record, 8192);
	buf_init(&zone, 16384);
	int status = 1;
	if (dkim_keygen(kt, (unsigned)bits, path, &record, err, sizeof err) < 0) {
		fprintf(stderr, "carteiro: %s\n", err);
		goto out;
	}
	if (dkim_zone_strings(buf_slice(&record), &zone) < 0) {
		fputs("carteiro: out of memory\n", stderr);
		goto out;
	}
	char abs[PATH_MAX];
	if (!realpath(path, abs))
		str_copy(abs, sizeof abs, path);
	printf("Wrote the private key (%s) to %s, mode 0600.\n"
	       "The server reads it as root when it starts: keep it readable by root only.\n\n"
	       "Publish this TXT record in the DNS zone of %s:\n\n"
	       "%s._domainkey.%s. IN TXT %s\n\n"
	       "Then add this line to the configuration:\n\n"
	       "dkim-sign %s %s %s\n",
	       kt == DKIM_KEY_RSA ? "RSA" : "Ed25519", abs, lower, selector, lower,
	       buf_cstr(&zone), lower, selector, abs);
	status = 0;
out:
	buf_free(&record);
	buf_free(&zone);
	return status;
}

static int cmd_help(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "config") == 0) {
		config_print_keys(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "demo-config") == 0) {
		fputs(config_demo_text, stdout);
		return 0;
	}
	fputs(usage_text, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 1;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("carteiro %s\n", CARTEIRO_VERSION);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "queue") == 0)
		return cmd_queue(argc - 1, argv + 1);
	if (strcmp(cmd, "passwd") == 0)
		return cmd_passwd(argc - 1, argv + 1);
	if (strcmp(cmd, "dkim-keygen") == 0)
		return cmd_dkim_keygen(argc - 1, argv + 1);
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	fprintf(stderr, "carteiro: unknown command '%s'\n\n%s", cmd, usage_text);
	return 1;
}
