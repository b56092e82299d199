/* SPDX-License-Identifier: MIT */
/*
 * batchd's command line: the first word picks a command.  Each command is
 * its own module (cmd_*.c) and returns the exit status.
 */
#include <stdio.h>
#include <string.h>

#include "cmd_run.h"
#include "config.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: batchd COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  run [--root DIR] [--job JOB.json] [--result FILE] TASK.json\n"
	    "                    run one Azure Batch task in the foreground\n"
	    "  version           print the version\n"
	    "  help              this text\n");
}

int
main(int argc, char **argv)
{
	log_init(BD_LOG_INFO, BD_LOG_FORMAT_AUTO);
	if (argc < 2) {
		usage(stderr);
		return 125;
	}
	if (strcmp(argv[1], "run") == 0)
		return bd_cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("batchd %s\n", BATCHD_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "batchd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 125;
}
