/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_SUPERVISE_H
#define BD_CMD_SUPERVISE_H

/*
 * `batchd supervise OPTIONS -- FILE ARGV0 ARGS...`: the hidden command the
 * agent starts for every task (supervisor.h); not for people.
 */
int bd_cmd_supervise(int argc, char **argv);

#endif
