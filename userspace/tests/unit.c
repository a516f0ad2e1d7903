// SPDX-License-Identifier: MIT
/* The runner of tests/unit.h: a child per test, TAP out */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

int unit_failures;
const char *unit_current;

/* In this process (race detectors follow no fork()): a failure is final */
static bool no_fork;

static bool run_test(const struct unit_test *t)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if (no_fork) {
		unit_current = t->name;
		unit_failures = 0;
		t->fn();
		return !unit_failures;
	}
	pid = fork();
	if (pid < 0) {
		printf("# %s: fork: %s\n", t->name, strerror(errno));
		return false;
	}
	if (!pid) {
		unit_current = t->name;
		unit_failures = 0;
		alarm(30);
		t->fn();
		fflush(stdout);
		_exit(unit_failures ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return false;
	if (WIFSIGNALED(status))
		printf("# %s: killed by signal %d (%s)\n", t->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool wanted(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int planned = 0, tests = 0, failed = 0;
	unsigned int i;
	bool ok;

	if (argc > 1 && !strcmp(argv[1], "--no-fork")) {
		no_fork = true;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	for (i = 0; i != unit_nr_tests; i++)
		planned += wanted(unit_tests[i].name, argc, argv);
	printf("TAP version 13\n1..%d\n", planned);
	for (i = 0; i != unit_nr_tests; i++) {
		if (!wanted(unit_tests[i].name, argc, argv))
			continue;
		ok = run_test(&unit_tests[i]);
		failed += !ok;
		tests++;
		printf("%sok %d %s\n", ok ? "" : "not ", tests,
		       unit_tests[i].name);
	}
	printf("# %s: %d tests, %d failed\n", argv[0], tests, failed);
	return failed ? 1 : 0;
}
