/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_SUPERVISE_H
#define BD_CMD_SUPERVISE_H

/*
 * `batchd supervise OPTIONS -- FILE ARGV0 ARGS...`: the hidden command the
 * agent starts for every task (supervisor.h); not for people.
 */
#include <stdbool.h>

int bd_cmd_supervise(int argc, char **argv);

/*
 * The same in a process that may supervise again (the spawner's worker,
 * spawner.c): keep_fd stays open, and *reusable says whether this process
 * is free for another task once it returns.
 */
int bd_cmd_supervise_kept(int argc, char **argv, int keep_fd,
    bool *reusable);

#endif
