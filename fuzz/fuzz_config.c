/*
 * fuzz_config: config_parse() on arbitrary bytes.
 *
 * Checks, beyond ASan and UBSan: every report has a non-empty message, the
 * file name it was given and a line within the input (0 for whole-file
 * errors); the returned count equals the reports; a parsed config is complete
 * (no NULL string) and within the table's limits; parsing the same text a
 * second time into the same config gives the same errors (the file replaces
 * what it names, lists included); config_free() releases everything, twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"

#define NAME "fuzz.conf"

struct fuzz_ctx {
	unsigned max_line;
	unsigned reports;
};

static void check_report(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct fuzz_ctx *c = ctx;

	if (!msg || msg[0] == '\0' || line > c->max_line || strcmp(file, NAME) != 0)
		abort();
	c->reports++;
}

static void check_config(const struct config *cfg, unsigned errors)
{
	if (!cfg->source || !cfg->hostname || !cfg->spool || !cfg->maildir_root || !cfg->user)
		abort();
	if ((cfg->users_file == NULL) != (cfg->users_line == 0) ||
	    (cfg->aliases_file == NULL) != (cfg->aliases_line == 0))
		abort();
	if (cfg->nlistens > 256 || (cfg->nlistens && !cfg->listens))
		abort();
	if (cfg->max_message_size < 1024 || cfg->max_message_size > (2ULL << 30) ||
	    cfg->workers > 64 || cfg->io_threads < 1 || cfg->io_threads > 64)
		abort();
	if (strlen(cfg->recipient_delimiter) >= sizeof cfg->recipient_delimiter)
		abort();
	for (size_t i = 0; i < cfg->nlocal_domains; i++)
		for (const char *p = cfg->local_domains[i]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
	if (errors == 0 &&
	    (cfg->nlistens == 0 || cfg->max_connections_per_ip > cfg->max_connections))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_ctx first = { 0 }, second = { 0 };
	struct config cfg;
	unsigned errors;

	for (size_t i = 0; i < size; i++)
		first.max_line += data[i] == '\n';
	if (size && data[size - 1] != '\n')
		first.max_line++;
	second.max_line = first.max_line;

	config_init(&cfg);
	errors = config_parse(&cfg, NAME, (const char *)data, size, check_report, &first);
	if (errors != first.reports)
		abort();
	check_config(&cfg, errors);
	errors = config_parse(&cfg, NAME, (const char *)data, size, check_report, &second);
	if (errors != second.reports || second.reports != first.reports)
		abort();
	check_config(&cfg, errors);
	config_free(&cfg);
	config_free(&cfg);
	return 0;
}
