/* SPDX-License-Identifier: MIT */
/*
 * batchd-supervise: the per-task supervisor as a program of its own
 * (supervisor.h).  One is started for every task, so it links only what
 * the supervisor needs and starts in a fraction of batchd's time; `batchd
 * supervise` remains the same command inside batchd.
 */
#include "cmd_supervise.h"

int
main(int argc, char **argv)
{
	return bd_cmd_supervise(argc, argv);
}
