/* SPDX-License-Identifier: MIT */
#ifndef BD_DURATION_H
#define BD_DURATION_H

/*
 * Durations as Azure Batch writes them: ISO 8601 (`PT1H30M`, `P7D`,
 * `PT0.5S`, `P2W`), in milliseconds.  Years and months are refused because
 * they have no fixed length.  .NET's TimeSpan.MaxValue
 * (`P10675199DT2H48M5.4775807S`), anything longer, and numbers too big to
 * hold all mean "unlimited" and give BD_DURATION_INFINITE.
 *
 * So that a task printed by `az batch task show` or by .NET can be fed
 * back, two more forms are read: Python's timedelta text
 * (`7 days, 0:00:00`, `1:30:00.5`) and .NET's TimeSpan text
 * (`7.00:00:00`, `10675199.02:48:05.4775807`).  Negative durations are
 * refused.
 */

#include <stddef.h>
#include <stdint.h>

/* Durations are milliseconds; this value means unlimited. */
#define BD_DURATION_INFINITE INT64_MAX

/* Enough room for any bd_duration_format() result. */
#define BD_DURATION_BUFSZ 64

/*
 * Parses s into *ms_out (fractions below a millisecond are dropped).
 * Returns 0, or -EINVAL with *ms_out untouched.
 */
int bd_duration_parse(const char *s, int64_t *ms_out);

/*
 * The same, and on -EINVAL sets *reason (if reason is not NULL) to a
 * static sentence saying what is wrong, e.g. "years and months have no
 * fixed length; use days (P30D) instead".
 */
int bd_duration_parse_reason(const char *s, int64_t *ms_out,
    const char **reason);

/*
 * Writes ms as an ISO 8601 duration into buf ("PT1H30M", "P7D",
 * "PT0.5S", "PT0S"), truncated to len bytes including the NUL.
 * BD_DURATION_INFINITE gives "P10675199DT2H48M5.4775807S".
 */
void bd_duration_format(int64_t ms, char *buf, size_t len);

#endif
