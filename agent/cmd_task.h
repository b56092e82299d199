/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_TASK_H
#define BD_CMD_TASK_H

/*
 * `batchd task add|list|show`: adds tasks to a job of the pool (their
 * rows and queue messages, all checked before anything is written) and
 * shows them (docs/commands.md).  argv[0] is "task".  Returns the exit
 * status (client.h).
 */
int bd_cmd_task(int argc, char **argv);

#endif
