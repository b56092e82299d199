/* SPDX-License-Identifier: MIT */
/* Tests for duration.c: ISO 8601, timedelta and TimeSpan texts, format. */
#include <errno.h>

#include "duration.h"
#include "unit.h"

/* Parses s and returns the milliseconds, failing the test on an error. */
static int64_t
parse_ok(const char *s)
{
	const char *reason = NULL;
	int64_t ms = -42;
	int rc;

	rc = bd_duration_parse_reason(s, &ms, &reason);
	if (rc != 0)
		UNIT_FAIL("\"%s\" did not parse: %s", s, reason);
	return ms;
}

/* Checks that s is refused with a reason containing want. */
static void
parse_bad(const char *s, const char *want)
{
	const char *reason = NULL;
	int64_t ms = -42;

	ASSERT_INT_EQ(bd_duration_parse_reason(s, &ms, &reason), -EINVAL);
	ASSERT_INT_EQ(ms, -42);
	ASSERT_STR_CONTAINS(reason, want);
}

static const char *
fmt(int64_t ms)
{
	static char buf[BD_DURATION_BUFSZ];

	bd_duration_format(ms, buf, sizeof buf);
	return buf;
}

TEST(iso_basic)
{
	ASSERT_INT_EQ(parse_ok("PT1H"), 3600000);
	ASSERT_INT_EQ(parse_ok("PT15M"), 900000);
	ASSERT_INT_EQ(parse_ok("PT30S"), 30000);
	ASSERT_INT_EQ(parse_ok("P7D"), 7LL * 86400000);
	ASSERT_INT_EQ(parse_ok("P2W"), 14LL * 86400000);
	ASSERT_INT_EQ(parse_ok("P1DT2H3M4S"),
	    86400000 + 2 * 3600000 + 3 * 60000 + 4000);
	ASSERT_INT_EQ(parse_ok("P1W2D"), 9LL * 86400000);
	ASSERT_INT_EQ(parse_ok("PT0S"), 0);
	ASSERT_INT_EQ(parse_ok("P0D"), 0);
	ASSERT_INT_EQ(parse_ok("PT90M"), 90 * 60000);
	ASSERT_INT_EQ(parse_ok("pt1h30m"), 90 * 60000);
	ASSERT_INT_EQ(parse_ok("PT0001H"), 3600000);
}

TEST(iso_fraction)
{
	ASSERT_INT_EQ(parse_ok("PT0.5S"), 500);
	ASSERT_INT_EQ(parse_ok("PT0,25S"), 250);
	ASSERT_INT_EQ(parse_ok("PT1.001S"), 1001);
	ASSERT_INT_EQ(parse_ok("PT0.0009S"), 0);
	ASSERT_INT_EQ(parse_ok("PT1.123456789S"), 1123);
	parse_bad("PT1.5H", "only the seconds");
	parse_bad("P1.5D", "only the seconds");
	parse_bad("PT1.S", "not an ISO 8601 duration");
	parse_bad("PT.5S", "not an ISO 8601 duration");
}

TEST(iso_max_and_overflow)
{
	ASSERT_INT_EQ(parse_ok("P10675199DT2H48M5.4775807S"),
	    BD_DURATION_INFINITE);
	ASSERT_INT_EQ(parse_ok("P10675199DT2H48M5.4775808S"),
	    BD_DURATION_INFINITE);
	ASSERT_INT_EQ(parse_ok("P10675200D"), BD_DURATION_INFINITE);
	ASSERT_INT_EQ(parse_ok("P99999999999999999999999D"),
	    BD_DURATION_INFINITE);
	ASSERT_INT_EQ(parse_ok("PT99999999999999999999S"),
	    BD_DURATION_INFINITE);
	/* Just under the maximum is finite. */
	ASSERT_INT_EQ(parse_ok("P10675199DT2H48M5.4775806S"),
	    922337203685477LL);
	ASSERT_INT_EQ(parse_ok("P10675199DT2H48M5.477S"),
	    922337203685477LL);
}

TEST(iso_errors)
{
	parse_bad("", "must not be empty");
	parse_bad("P", "not an ISO 8601 duration");
	parse_bad("PT", "not an ISO 8601 duration");
	parse_bad("P1DT", "not an ISO 8601 duration");
	parse_bad("P1Y", "years and months have no fixed length");
	parse_bad("P1M", "years and months have no fixed length");
	parse_bad("P1Y2M3D", "years and months");
	parse_bad("-PT1H", "must not be negative");
	parse_bad("PT1H1H", "not an ISO 8601 duration");
	parse_bad("PT1M1H", "not an ISO 8601 duration");
	parse_bad("P1D1W", "not an ISO 8601 duration");
	parse_bad("P1H", "not an ISO 8601 duration");
	parse_bad("PT1D", "not an ISO 8601 duration");
	parse_bad("PT1", "not an ISO 8601 duration");
	parse_bad("PTT1H", "not an ISO 8601 duration");
	parse_bad("PT1H ", "not an ISO 8601 duration");
	parse_bad(" PT1H", "not an ISO 8601 duration");
	parse_bad("1 hour", "not an ISO 8601 duration");
	parse_bad("forever", "not an ISO 8601 duration");
	parse_bad("PT+1H", "not an ISO 8601 duration");
	ASSERT_INT_EQ(bd_duration_parse(NULL, &(int64_t){ 0 }), -EINVAL);
	ASSERT_INT_EQ(bd_duration_parse("P1Y", &(int64_t){ 0 }), -EINVAL);
}

TEST(clock_forms)
{
	/* Python timedelta, as az prints it. */
	ASSERT_INT_EQ(parse_ok("7 days, 0:00:00"), 7LL * 86400000);
	ASSERT_INT_EQ(parse_ok("1 day, 1:02:03"),
	    86400000 + 3600000 + 2 * 60000 + 3000);
	ASSERT_INT_EQ(parse_ok("0:15:00"), 900000);
	ASSERT_INT_EQ(parse_ok("1:30:00.500000"), 90 * 60000 + 500);
	ASSERT_INT_EQ(parse_ok("10675199 days, 2:48:05.477581"),
	    BD_DURATION_INFINITE);
	/* .NET TimeSpan. */
	ASSERT_INT_EQ(parse_ok("7.00:00:00"), 7LL * 86400000);
	ASSERT_INT_EQ(parse_ok("00:00:01.5"), 1500);
	ASSERT_INT_EQ(parse_ok("10675199.02:48:05.4775807"),
	    BD_DURATION_INFINITE);

	parse_bad("-1 day, 23:00:00", "must not be negative");
	parse_bad("24:00:00", "hours must be below 24");
	parse_bad("0:60:00", "hours must be below 24");
	parse_bad("0:00:60", "hours must be below 24");
	parse_bad("1:2:3", "not an ISO 8601 duration");
	parse_bad("123:00:00", "not an ISO 8601 duration");
	parse_bad("1 day 0:00:00", "not an ISO 8601 duration");
	parse_bad("1 days, 0:00", "not an ISO 8601 duration");
	parse_bad("0:00:00.", "not an ISO 8601 duration");
	parse_bad("0:00:00x", "not an ISO 8601 duration");
	parse_bad("5", "not an ISO 8601 duration");
}

TEST(format)
{
	char small[4];

	ASSERT_STR_EQ(fmt(0), "PT0S");
	ASSERT_STR_EQ(fmt(500), "PT0.5S");
	ASSERT_STR_EQ(fmt(1), "PT0.001S");
	ASSERT_STR_EQ(fmt(1250), "PT1.25S");
	ASSERT_STR_EQ(fmt(90 * 60000), "PT1H30M");
	ASSERT_STR_EQ(fmt(3600000), "PT1H");
	ASSERT_STR_EQ(fmt(60000), "PT1M");
	ASSERT_STR_EQ(fmt(7LL * 86400000), "P7D");
	ASSERT_STR_EQ(fmt(86400000 + 1000), "P1DT1S");
	ASSERT_STR_EQ(fmt(86400000 + 3600000 + 60000 + 1500),
	    "P1DT1H1M1.5S");
	ASSERT_STR_EQ(fmt(BD_DURATION_INFINITE),
	    "P10675199DT2H48M5.4775807S");
	ASSERT_STR_EQ(fmt(-1500), "-PT1.5S");
	ASSERT_STR_EQ(fmt(INT64_MIN), "-P106751991167DT7H12M55.808S");
	ASSERT_STR_EQ(fmt(INT64_MAX - 1), "P106751991167DT7H12M55.806S");

	bd_duration_format(3600000, small, sizeof small);
	ASSERT_STR_EQ(small, "PT1");
	bd_duration_format(3600000, small, 0);
}

TEST(round_trip)
{
	static const int64_t values[] = {
		0, 1, 999, 1000, 59999, 60000, 3599999, 3600000, 86399999,
		86400000, 7LL * 86400000 + 1, 922337203685477LL,
	};
	char buf[BD_DURATION_BUFSZ];
	size_t i;

	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		bd_duration_format(values[i], buf, sizeof buf);
		ASSERT_INT_EQ(parse_ok(buf), values[i]);
	}
	bd_duration_format(BD_DURATION_INFINITE, buf, sizeof buf);
	ASSERT_INT_EQ(parse_ok(buf), BD_DURATION_INFINITE);
}

int
main(void)
{
	RUN(iso_basic);
	RUN(iso_fraction);
	RUN(iso_max_and_overflow);
	RUN(iso_errors);
	RUN(clock_forms);
	RUN(format);
	RUN(round_trip);
	return 0;
}
