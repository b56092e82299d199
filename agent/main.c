/* SPDX-License-Identifier: MIT */
/*
 * batchd's command line: the first word picks a command from the table
 * below.  Each command is its own module (cmd_*.c) and returns the exit
 * status.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_check_config.h"
#include "cmd_daemon.h"
#include "cmd_job.h"
#include "cmd_node.h"
#include "cmd_run.h"
#include "cmd_supervise.h"
#include "cmd_task.h"
#include "cmd_wait.h"
#include "log.h"
#include "version.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
} commands[] = {
	{ "run", bd_cmd_run,
	  "run [--root DIR] [--job JOB.json] [--result FILE] TASK.json",
	  "run one Azure Batch task in the foreground" },
	{ "daemon", bd_cmd_daemon, "daemon [--config FILE]",
	  "run the node agent: take tasks from the pool until stopped" },
	{ "job", bd_cmd_job,
	  "job add|terminate|list|show [--config FILE] ...",
	  "add, terminate and look at the pool's jobs (batchd job --help)" },
	{ "task", bd_cmd_task,
	  "task add|list|show [--config FILE] JOB_ID ...",
	  "add tasks to a job and look at them (batchd task --help)" },
	{ "node", bd_cmd_node, "node list [--config FILE]",
	  "the pool's nodes with their state and slots" },
	{ "wait", bd_cmd_wait,
	  "wait [--config FILE] [--timeout DURATION] JOB_ID",
	  "wait until every task of a job has completed" },
	{ "check-config", bd_cmd_check_config,
	  "check-config [--config FILE] [--show] [--list]",
	  "check the node configuration without starting" },
	/* Hidden (no usage): the agent's per-task supervisor. */
	{ "supervise", bd_cmd_supervise, NULL, NULL },
	{ "version", cmd_version, "version", "print the version" },
	{ "help", cmd_help, "help", "this text" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: batchd COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].usage != NULL)
			fprintf(f, "  %s\n      %s\n", commands[i].usage,
			    commands[i].help);
}

static int
cmd_version(int argc, char **argv)
{
	printf("batchd %s\n", BATCHD_VERSION);
	return 0;
}

static int
cmd_help(int argc, char **argv)
{
	usage(stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	int fd;

	/* Started without a standard stream, the next descriptor opened
	 * would become it: a pipe or socket that a task, or a supervisor
	 * kept for the next task, would then hold.  /dev/null takes them. */
	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fd <= 2)
		(void)fcntl(fd, F_SETFD, 0);
	if (fd > 2)
		close(fd);
	log_init(BD_LOG_INFO, BD_LOG_FORMAT_AUTO);
	if (argc < 2) {
		usage(stderr);
		return 125;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0)
		return cmd_help(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "batchd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 125;
}
