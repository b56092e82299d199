/* SPDX-License-Identifier: MIT */
/*
 * `batchd check-config`: reads the node configuration exactly as the
 * daemon would, and reports instead of starting.
 *
 *   batchd check-config [--config FILE] [--show] [--list]
 *
 * Without options it prints "FILE: ok" (FILE is "built-in defaults" when
 * no file was found) and exits 0, or prints every error on stderr as
 * "FILE: key: reason" and exits 1.  --show prints the effective
 * configuration as JSON instead of "ok", secrets replaced by "REDACTED".
 * --list prints the option table, one option a line with its name, type,
 * default and help separated by tabs, and reads no file.
 */
#include "cmd_check_config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

static void
check_config_usage(FILE *f)
{
	fprintf(f, "usage: batchd check-config [--config FILE] [--show] "
	    "[--list]\n");
}

/* Prints the option table: name, type, default and help, tab-separated. */
static void
check_config_list(void)
{
	const struct bd_config_option *opts;
	size_t i, n;
	char *type;

	opts = bd_config_options(&n);
	for (i = 0; i < n; i++) {
		type = bd_config_option_type(&opts[i]);
		printf("%s\t%s\t%s\t%s\n", opts[i].name, type,
		    opts[i].default_value != NULL ? opts[i].default_value :
		    "-", opts[i].help);
		free(type);
	}
}

int
bd_cmd_check_config(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "show", no_argument, NULL, 's' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bd_config *config = NULL;
	const char *path = NULL;
	char *cause = NULL, *text;
	int ch, show = 0, list = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:slh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 's':
			show = 1;
			break;
		case 'l':
			list = 1;
			break;
		case 'h':
			check_config_usage(stdout);
			return 0;
		default:
			check_config_usage(stderr);
			return 125;
		}
	}
	if (optind != argc) {
		check_config_usage(stderr);
		return 125;
	}
	if (list) {
		check_config_list();
		return 0;
	}
	if (bd_config_load(path, &config, &cause) != 0) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return 1;
	}
	if (show) {
		text = bd_config_show(config);
		printf("%s\n", text);
		free(text);
	} else
		printf("%s: ok\n", config->path != NULL ? config->path :
		    "built-in defaults");
	bd_config_free(config);
	return 0;
}
