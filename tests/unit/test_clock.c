/* SPDX-License-Identifier: MIT */
#include "clock.h"
#include "unit.h"

TEST(format_and_parse)
{
	char buf[40];
	int64_t ms;

	bd_clock_format_iso(1795400372123LL, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "2026-11-23T02:19:32.123Z");
	ASSERT_INT_EQ(bd_clock_parse_iso(buf, &ms), 0);
	ASSERT_INT_EQ(ms, 1795400372123LL);
	ASSERT_INT_EQ(bd_clock_parse_iso("2026-11-23T02:19:32Z", &ms), 0);
	ASSERT_INT_EQ(ms, 1795400372000LL);
	ASSERT_INT_EQ(bd_clock_parse_iso("2026-11-23T02:19:32.5Z", &ms), 0);
	ASSERT_INT_EQ(ms, 1795400372500LL);
	ASSERT(bd_clock_parse_iso("yesterday", &ms) < 0);
	ASSERT(bd_clock_parse_iso("2026-11-23T02:19:32Zjunk", &ms) < 0);
}

TEST(monotonic)
{
	int64_t a = bd_clock_mono_ms(), b = bd_clock_mono_ms();

	ASSERT(b >= a);
	ASSERT(bd_clock_now_ms() > 1700000000000LL);
}

int
main(void)
{
	RUN(format_and_parse);
	RUN(monotonic);
	return 0;
}
