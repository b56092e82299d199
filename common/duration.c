/* SPDX-License-Identifier: MIT */
/*
 * ISO 8601 durations, as Azure Batch uses them for maxWallClockTime and
 * retentionTime.
 *
 * Parsing adds each component up in .NET ticks (100 ns), the unit the
 * service stores, so that TimeSpan.MaxValue (INT64_MAX ticks) is caught
 * exactly and anything at or past it, or too big for 64 bits, becomes
 * BD_DURATION_INFINITE.  The result is then cut down to milliseconds.
 * Besides the ISO form, the clock-like texts printed by Python's timedelta
 * (`az batch task show`) and .NET's TimeSpan are read too.  Nothing here
 * allocates.
 */
#include "duration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TICKS_PER_MS	10000ULL
#define TICKS_PER_S	10000000ULL
#define TICKS_PER_MIN	(60 * TICKS_PER_S)
#define TICKS_PER_H	(60 * TICKS_PER_MIN)
#define TICKS_PER_D	(24 * TICKS_PER_H)
#define TICKS_PER_W	(7 * TICKS_PER_D)
#define TICKS_MAX	((uint64_t)INT64_MAX) /* .NET TimeSpan.MaxValue */

#define MS_PER_S	1000LL
#define MS_PER_MIN	(60 * MS_PER_S)
#define MS_PER_H	(60 * MS_PER_MIN)
#define MS_PER_D	(24 * MS_PER_H)

#define DURATION_MAX_TEXT "P10675199DT2H48M5.4775807S"

static const char reason_syntax[] =
    "not an ISO 8601 duration such as PT1H30M, P7D or PT0.5S";
static const char reason_empty[] = "must not be empty";
static const char reason_negative[] = "must not be negative";
static const char reason_year_month[] =
    "years and months have no fixed length; use days (P30D) or weeks (P4W)";
static const char reason_fraction[] =
    "only the seconds may have a fraction (PT1.5S)";
static const char reason_clock[] =
    "not a duration: hours must be below 24 and minutes and seconds "
    "below 60 (1.02:03:04 or 1 day, 2:03:04)";

/* A running total in ticks that remembers if it ever overflowed. */
struct duration_sum {
	uint64_t ticks;
	bool overflow;
};

/* Adds n units of unit_ticks to the sum, saturating on overflow. */
static void
duration_add(struct duration_sum *sum, uint64_t n, uint64_t unit_ticks)
{
	uint64_t v;

	if (sum->overflow)
		return;
	if (n != 0 && unit_ticks > UINT64_MAX / n) {
		sum->overflow = true;
		return;
	}
	v = n * unit_ticks;
	if (sum->ticks > UINT64_MAX - v) {
		sum->overflow = true;
		return;
	}
	sum->ticks += v;
}

/* An ASCII digit, whatever the locale. */
static bool
duration_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Reads a run of decimal digits at *pp into *n, setting *overflow when it
 * does not fit.  Returns the number of digits read.
 */
static size_t
duration_read_uint(const char **pp, uint64_t *n, bool *overflow)
{
	const char *p = *pp;
	uint64_t v = 0;
	unsigned d;

	*overflow = false;
	while (duration_isdigit(*p)) {
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			v = v * 10 + d;
		p++;
	}
	*n = v;
	d = (unsigned)(p - *pp);
	*pp = p;
	return d;
}

/*
 * Reads the digits of a fraction of a second at *pp (the decimal sign
 * already passed) as ticks; digits past the seventh are dropped.  Returns
 * the number of digits read.
 */
static size_t
duration_read_fraction(const char **pp, uint64_t *ticks)
{
	const char *p = *pp;
	uint64_t v = 0, scale = TICKS_PER_S;
	size_t n = 0;

	while (duration_isdigit(*p)) {
		if (scale > 1) {
			scale /= 10;
			v += (uint64_t)(*p - '0') * scale;
		}
		p++;
		n++;
	}
	*ticks = v;
	*pp = p;
	return n;
}

/* Parses the ISO 8601 form after its `P`. */
static int
duration_parse_iso(const char *p, struct duration_sum *sum,
    const char **reason)
{
	/* Designators in the order they must come; 'T' sits between. */
	static const char date_units[] = "YMWD", time_units[] = "HMS";
	static const uint64_t unit_ticks[] = {
		0, 0, TICKS_PER_W, TICKS_PER_D,
		TICKS_PER_H, TICKS_PER_MIN, TICKS_PER_S,
	};
	bool in_time = false, any = false, any_time = false, overflow;
	bool has_fraction;
	uint64_t n, fraction;
	const char *units, *u;
	int idx, last = -1;
	char c;

	while (*p != '\0') {
		if (*p == 'T' || *p == 't') {
			if (in_time)
				goto syntax;
			in_time = true;
			last = 3;
			p++;
			continue;
		}
		if (!duration_isdigit(*p))
			goto syntax;
		duration_read_uint(&p, &n, &overflow);
		has_fraction = false;
		fraction = 0;
		if (*p == '.' || *p == ',') {
			p++;
			if (duration_read_fraction(&p, &fraction) == 0)
				goto syntax;
			has_fraction = true;
		}
		c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == '\0')
			goto syntax;
		units = in_time ? time_units : date_units;
		if ((u = strchr(units, c)) == NULL)
			goto syntax;
		idx = (int)(u - units) + (in_time ? 4 : 0);
		if (idx <= last)
			goto syntax;
		last = idx;
		p++;
		if (idx <= 1) {
			*reason = reason_year_month;
			return -EINVAL;
		}
		if (has_fraction && idx != 6) {
			*reason = reason_fraction;
			return -EINVAL;
		}
		if (overflow)
			sum->overflow = true;
		duration_add(sum, n, unit_ticks[idx]);
		duration_add(sum, fraction, 1);
		any = true;
		if (in_time)
			any_time = true;
	}
	if (!any || (in_time && !any_time))
		goto syntax;
	return 0;

syntax:
	*reason = reason_syntax;
	return -EINVAL;
}

/*
 * Reads exactly `digits` digits (or 1 to 2 when digits is 0) at *pp into
 * *n.  Returns false when they are not there.
 */
static bool
duration_read_fixed(const char **pp, size_t digits, uint64_t *n)
{
	const char *p = *pp;
	uint64_t v = 0;
	size_t i, max = digits ? digits : 2;

	for (i = 0; i < max && duration_isdigit(p[i]); i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	if (i == 0 || (digits != 0 && i != digits))
		return false;
	*n = v;
	*pp = p + i;
	return true;
}

/*
 * Parses the clock forms: Python's `[D day[s], ]H:MM:SS[.ffffff]` and
 * .NET's `[D.]HH:MM:SS[.fffffff]`.
 */
static int
duration_parse_clock(const char *p, struct duration_sum *sum,
    const char **reason)
{
	uint64_t days = 0, h, m, s, fraction = 0;
	bool overflow = false;
	const char *q;

	/* A leading number followed by " day" or "." is the day count. */
	q = p;
	duration_read_uint(&q, &days, &overflow);
	if (strncmp(q, " day", 4) == 0) {
		q += 4;
		if (*q == 's')
			q++;
		if (strncmp(q, ", ", 2) != 0)
			goto syntax;
		p = q + 2;
	} else if (*q == '.') {
		p = q + 1;
	} else {
		days = 0;
		overflow = false;
	}
	if (!duration_read_fixed(&p, 0, &h) || *p++ != ':' ||
	    !duration_read_fixed(&p, 2, &m) || *p++ != ':' ||
	    !duration_read_fixed(&p, 2, &s))
		goto syntax;
	if (*p == '.') {
		p++;
		if (duration_read_fraction(&p, &fraction) == 0)
			goto syntax;
	}
	if (*p != '\0')
		goto syntax;
	if (h >= 24 || m >= 60 || s >= 60) {
		*reason = reason_clock;
		return -EINVAL;
	}
	if (overflow)
		sum->overflow = true;
	duration_add(sum, days, TICKS_PER_D);
	duration_add(sum, h, TICKS_PER_H);
	duration_add(sum, m, TICKS_PER_MIN);
	duration_add(sum, s, TICKS_PER_S);
	duration_add(sum, fraction, 1);
	return 0;

syntax:
	*reason = reason_syntax;
	return -EINVAL;
}

int
bd_duration_parse_reason(const char *s, int64_t *ms_out, const char **reason)
{
	struct duration_sum sum = { 0, false };
	const char *why = NULL;
	int rc;

	if (s == NULL || *s == '\0') {
		why = reason_empty;
		rc = -EINVAL;
	} else if (*s == '-') {
		why = reason_negative;
		rc = -EINVAL;
	} else if (*s == 'P' || *s == 'p')
		rc = duration_parse_iso(s + 1, &sum, &why);
	else if (duration_isdigit(*s))
		rc = duration_parse_clock(s, &sum, &why);
	else {
		why = reason_syntax;
		rc = -EINVAL;
	}
	if (rc != 0) {
		if (reason != NULL)
			*reason = why;
		return rc;
	}
	if (sum.overflow || sum.ticks >= TICKS_MAX)
		*ms_out = BD_DURATION_INFINITE;
	else
		*ms_out = (int64_t)(sum.ticks / TICKS_PER_MS);
	return 0;
}

int
bd_duration_parse(const char *s, int64_t *ms_out)
{
	return bd_duration_parse_reason(s, ms_out, NULL);
}

void
bd_duration_format(int64_t ms, char *buf, size_t len)
{
	char tmp[BD_DURATION_BUFSZ], frac[8];
	uint64_t v, days, h, m, sec, milli;
	size_t off = 0;
	int i;

	if (len == 0)
		return;
	if (ms == BD_DURATION_INFINITE) {
		snprintf(buf, len, "%s", DURATION_MAX_TEXT);
		return;
	}
	if (ms < 0) {
		tmp[off++] = '-';
		v = (uint64_t)0 - (uint64_t)ms;
	} else
		v = (uint64_t)ms;
	days = v / MS_PER_D;
	v %= MS_PER_D;
	h = v / MS_PER_H;
	v %= MS_PER_H;
	m = v / MS_PER_MIN;
	v %= MS_PER_MIN;
	sec = v / MS_PER_S;
	milli = v % MS_PER_S;

	tmp[off++] = 'P';
	if (days != 0)
		off += (size_t)snprintf(tmp + off, sizeof tmp - off,
		    "%" PRIu64 "D", days);
	if (h != 0 || m != 0 || sec != 0 || milli != 0 || days == 0) {
		tmp[off++] = 'T';
		if (h != 0)
			off += (size_t)snprintf(tmp + off, sizeof tmp - off,
			    "%" PRIu64 "H", h);
		if (m != 0)
			off += (size_t)snprintf(tmp + off, sizeof tmp - off,
			    "%" PRIu64 "M", m);
		if (sec != 0 || milli != 0 || (h == 0 && m == 0)) {
			frac[0] = '\0';
			if (milli != 0) {
				snprintf(frac, sizeof frac, ".%03u",
				    (unsigned)milli);
				for (i = 3; i > 1 && frac[i] == '0'; i--)
					frac[i] = '\0';
			}
			off += (size_t)snprintf(tmp + off, sizeof tmp - off,
			    "%" PRIu64 "%sS", sec, frac);
		}
	}
	tmp[off] = '\0';
	snprintf(buf, len, "%s", tmp);
}
