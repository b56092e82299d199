/* SPDX-License-Identifier: MIT */
#ifndef BD_PROGRESS_H
#define BD_PROGRESS_H

/*
 * A one-line transfer status on a terminal ("downloading input.dat
 * 12.0/100.0 MiB"), redrawn at most ten times a second and erased when the
 * transfer phase ends.  Does nothing when stderr is not a terminal.
 */

#include <stdint.h>

void bd_progress_update(const char *verb, const char *name, int64_t done,
    int64_t total);
void bd_progress_clear(void);

#endif
