/* SPDX-License-Identifier: MIT */
#ifndef BD_UNIT_H
#define BD_UNIT_H

/*
 * A tiny test harness: each test file defines TEST(name) functions and
 * lists them in main() with RUN(name).  Assertions print both sides and
 * the place, then end the test program with a failure.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define TEST(name) static void test_##name(void)

#define RUN(name)                                                     \
	do {                                                          \
		fprintf(stderr, "-- %s\n", #name);                    \
		test_##name();                                        \
	} while (0)

#define UNIT_FAIL(...)                                                \
	do {                                                          \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);       \
		fprintf(stderr, __VA_ARGS__);                         \
		fputc('\n', stderr);                                  \
		exit(1);                                              \
	} while (0)

#define ASSERT(cond)                                                  \
	do {                                                          \
		if (!(cond))                                          \
			UNIT_FAIL("assertion failed: %s", #cond);     \
	} while (0)

#define ASSERT_INT_EQ(a, b)                                           \
	do {                                                          \
		intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);      \
		if (a_ != b_)                                         \
			UNIT_FAIL("%s == %s: %jd != %jd", #a, #b, a_, b_); \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                           \
	do {                                                          \
		const char *a_ = (a), *b_ = (b);                      \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)  \
			UNIT_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, \
			    a_ ? a_ : "(null)", b_ ? b_ : "(null)");  \
	} while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                              \
	do {                                                          \
		const char *h_ = (hay), *n_ = (needle);               \
		if (h_ == NULL || strstr(h_, n_) == NULL)             \
			UNIT_FAIL("%s contains %s: \"%s\" lacks \"%s\"", \
			    #hay, #needle, h_ ? h_ : "(null)", n_);   \
	} while (0)

#define ASSERT_NULL(p) ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

#endif
