// SPDX-License-Identifier: MIT
/*
 * kernel_scenarios: in the guest, every scenario (tests/scen.h) on the real
 * kernel at /dev/iommu with the selftest mock driver, and on the fake of
 * the same kind; each transcript must be the fake's, line by line, and each
 * scenario's own checks must hold on both. Prints TAP.
 *
 *   kernel_scenarios [--expect base|v3] [--record] [NAME...]
 *
 * The kernel is detected (7.3 as Debian ships it, or the series' v3); with
 * --expect, another kernel fails the run. Scenarios of behaviours the
 * kernel does not have are skipped (7.3 has no header format, bound, cap or
 * eventfd), the fallbacks the library takes there are scenarios of their
 * own. --record prints the kernel's transcripts instead, for
 * tests/transcripts/ (what test_scenarios compares the fakes with).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iofault.h"
#include "scen.h"

#define SCEN_TIMEOUT 120	/* seconds a scenario may take, both runs */

/* A scenario that hangs (a deadlock, a queue never read) fails the run */
static int current_n;
static const char *current_name;

static void timed_out(int sig)
{
	char line[160];
	int n = snprintf(line, sizeof(line),
			 "not ok %d %s # timed out after %d s\n", current_n,
			 current_name, SCEN_TIMEOUT);

	if (write(1, line, n) < 0)
		_exit(2);
	_exit(1);
}

static bool wanted(const char *name, int argc, char **argv, int first)
{
	int i;

	if (first >= argc)
		return true;
	for (i = first; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const char *expect = NULL;
	const struct scenario *s;
	bool record = false, ok, same, one = false;
	int first = 1, status, kind, n = 0, failed = 0, i;
	unsigned int planned = 0, on;
	char why[160], *tk, *tf;

	if (scen_child(argc, argv, &status))
		return status;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--expect") && first + 1 < argc)
			expect = argv[++first];
		else if (!strcmp(argv[first], "--record"))
			record = true;
	}
	kind = backend_detect(why, sizeof(why), &one);
	on = kind == FAKE_73 ? ON_73 : kind == FAKE_V3 ? ON_V3 : 0;
	for (i = 0; (s = scen_all(i)); i++)
		planned += wanted(s->name, argc, argv, first);
	if (!record)
		printf("TAP version 13\n1..%u\n# kernel: %s\n", planned + 1,
		       why);
	if (expect && (strcmp(expect, kind == FAKE_73 ? "base" :
				      kind == FAKE_V3 ? "v3" : "?"))) {
		printf("not ok 1 kernel: expected %s\n", expect);
		return 1;
	}
	if (!record)
		printf("%sok 1 kernel: %s\n", on ? "" : "not ",
		       on ? (kind == FAKE_73 ? "7.3" : "v3") :
			    "neither 7.3 nor v3: compared with the v3 fake");
	failed += !on;
	if (!on) {
		on = ON_V3;
		kind = FAKE_V3;
	}
	if (record)
		printf("=== kernel\n%s\none_step %d\n", why, one);
	n = 1;
	for (i = 0; (s = scen_all(i)); i++) {
		if (!wanted(s->name, argc, argv, first))
			continue;
		n++;
		if (!(s->on & on)) {
			if (!record)
				printf("ok %d %s # SKIP not a behaviour of this kernel\n",
				       n, s->name);
			continue;
		}
		fflush(stdout);
		current_n = n;
		current_name = s->name;
		signal(SIGALRM, timed_out);
		alarm(SCEN_TIMEOUT);
		backend_use(backend_kernel(kind, one));
		ok = scen_run(s, &tk);
		if (record) {
			alarm(0);
			printf("=== %s\n%s", s->name, tk);
			free(tk);
			continue;
		}
		backend_use(backend_fake(kind, one));
		ok &= scen_run(s, &tf);
		same = tr_compare(tk, "kernel", tf, "fake", stdout);
		if (!ok)
			printf("# %s: a check failed:\n", s->name);
		if (!ok || !same) {
			char *line, *save = NULL;

			for (line = strtok_r(tk, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				printf("#   kernel| %s\n", line);
		}
		printf("%sok %d %s%s\n", ok && same ? "" : "not ", n, s->name,
		       same ? "" : " (the fake differs from the kernel)");
		failed += !(ok && same);
		alarm(0);
		free(tk);
		free(tf);
	}
	if (!record)
		printf("# %d scenarios, %d failed\n", n, failed);
	return failed ? 1 : 0;
}
