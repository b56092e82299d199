/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_WAIT_H
#define BD_CMD_WAIT_H

/*
 * `batchd wait JOB_ID`: waits until every task of the job has finished
 * (docs/commands.md).  argv[0] is "wait".  Returns 0 when all succeeded,
 * 1 when one failed or on an error, 2 on timeout, 125 for an internal
 * error.
 */
int bd_cmd_wait(int argc, char **argv);

#endif
