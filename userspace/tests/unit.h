/* SPDX-License-Identifier: MIT */
/*
 * The unit tests' harness: each test program lists its tests with
 * UNIT_TESTS(...) and links tests/unit.c, which runs each in a child
 * process of its own (a crash or a hang fails that test only) and prints
 * TAP. A test program takes test names as arguments to run only those;
 * --no-fork first runs them in the process itself (for race detectors).
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>

extern int unit_failures;
extern const char *unit_current;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			printf("# %s:%d: %s: check failed: %s\n", __FILE__, \
			       __LINE__, unit_current, #cond);             \
			unit_failures++;                                   \
			return;                                            \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long _a = (long long)(a), _b = (long long)(b);        \
		if (_a != _b) {                                            \
			printf("# %s:%d: %s: %s == %lld, expected %lld\n",  \
			       __FILE__, __LINE__, unit_current, #a, _a,   \
			       _b);                                        \
			unit_failures++;                                   \
			return;                                            \
		}                                                          \
	} while (0)

struct unit_test {
	const char *name;
	void (*fn)(void);
};

#define T(fn) { #fn, fn }
#define UNIT_TESTS(...)                                                    \
	const struct unit_test unit_tests[] = { __VA_ARGS__ };             \
	const unsigned int unit_nr_tests =                                 \
		sizeof(unit_tests) / sizeof(unit_tests[0])

extern const struct unit_test unit_tests[];
extern const unsigned int unit_nr_tests;

#endif
