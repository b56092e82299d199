/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_RUN_H
#define BD_CMD_RUN_H

/* `batchd run`: returns the process exit status (see cmd_run.c). */
int bd_cmd_run(int argc, char **argv);

#endif
