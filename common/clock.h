/* SPDX-License-Identifier: MIT */
#ifndef BD_CLOCK_H
#define BD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time in milliseconds since the epoch (for records). */
int64_t bd_clock_now_ms(void);

/* Monotonic milliseconds (for timeouts and durations). */
int64_t bd_clock_mono_ms(void);

/* Formats ms as ISO 8601 UTC with milliseconds: 2026-11-27T02:19:32.123Z. */
void bd_clock_format_iso(int64_t ms, char *buf, size_t len);

/* Parses that form (fraction and "Z" optional); 0 or -EINVAL. */
int bd_clock_parse_iso(const char *s, int64_t *ms);

/*
 * The kernel's id of this boot into buf (len bytes), to tell a restart of
 * batchd from a reboot: what a reboot loses (the page cache, processes)
 * an id from an earlier boot says is gone.  "unknown" when unreadable.
 */
void bd_clock_boot_id(char *buf, size_t len);

#endif
