/* SPDX-License-Identifier: MIT */
#ifndef BD_FOLLOW_H
#define BD_FOLLOW_H

/*
 * Follows a file that a task appends to (stdout.txt, stderr.txt) and copies
 * what is appended to an output descriptor, as `tail -f` would.  The task
 * writes its files directly, so following costs the task nothing and the
 * files stay complete whatever happens to batchd.
 */

#include <uv.h>

struct bd_follow;

/* Starts following path (which must exist) to out_fd; 0 or negative errno. */
int bd_follow_start(uv_loop_t *loop, const char *path, int out_fd,
    struct bd_follow **out);

/* Copies what is left, stops, and frees once its handles are closed. */
void bd_follow_stop(struct bd_follow *f);

#endif
