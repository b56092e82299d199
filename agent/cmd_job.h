/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_JOB_H
#define BD_CMD_JOB_H

/*
 * `batchd job add|terminate|list|show`: the pool's jobs (docs/commands.md).
 * argv[0] is "job".  Returns the exit status.
 */
int bd_cmd_job(int argc, char **argv);

#endif
