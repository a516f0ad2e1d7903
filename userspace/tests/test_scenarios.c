// SPDX-License-Identifier: MIT
/*
 * The scenarios (tests/scen.h) on the host, on both fakes: their own checks
 * hold, they run the same twice, and each transcript is the one recorded
 * from the real kernel of its kind in tests/transcripts/ (base.txt: 7.3,
 * v3.txt: the series; kernel_scenarios --record in the guest makes them).
 * The guest's kernel_scenarios compares the fake with the kernel directly;
 * this catches a fake changed since the last recording without a guest.
 */
#include <stdlib.h>
#include <string.h>

#include "iofault.h"
#include "scen.h"
#include "unit.h"

/* What V3-UAPI.md has: the one-step flag too */
static const bool kind_default_one_step = true;

#ifndef SCEN_DIR
#define SCEN_DIR "tests/transcripts"
#endif

/* The recorded transcript of scenario @name, or NULL */
static char *recorded(const char *file, const char *name)
{
	char path[512], *text = NULL, *at, *end, marker[96];
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", SCEN_DIR, file);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (getdelim(&text, &len, 0, f) < 0) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	snprintf(marker, sizeof(marker), "=== %s\n", name);
	at = strstr(text, marker);
	if (!at) {
		free(text);
		return NULL;
	}
	at += strlen(marker);
	end = strstr(at, "\n=== ");
	if (end)
		end[1] = 0;
	memmove(text, at, strlen(at) + 1);
	return text;
}

/* Was the recorded kernel one with IOPF_CAPABLE? */
static bool recorded_one_step(const char *file)
{
	char *k = recorded(file, "kernel");
	bool one = kind_default_one_step;

	if (k) {
		one = strstr(k, "one_step 1") != NULL;
		free(k);
	}
	return one;
}

static void on_fake(enum fake_kernel kind)
{
	const char *file = kind == FAKE_73 ? "base.txt" : "v3.txt";
	unsigned int bit = kind == FAKE_73 ? ON_73 : ON_V3;
	int i, compared = 0, bad = 0;
	const struct scenario *s;
	bool one = kind == FAKE_V3 && recorded_one_step(file);
	char *t1, *t2, *rec;
	bool ok;

	for (i = 0; (s = scen_all(i)); i++) {
		if (!(s->on & bit))
			continue;
		backend_use(backend_fake(kind, one));
		ok = scen_run(s, &t1);
		backend_use(backend_fake(kind, one));
		ok &= scen_run(s, &t2);
		if (!ok) {
			printf("# %s: a check failed:\n%s", s->name, t1);
			bad++;
		} else if (!tr_compare(t1, "first", t2, "second", stdout)) {
			printf("# %s: not the same twice\n", s->name);
			bad++;
		}
		/* IOF_SCEN_DUMP=1: the fake's transcripts, as --record has them */
		if (getenv("IOF_SCEN_DUMP"))
			printf("=== %s\n%s", s->name, t1);
		rec = recorded(file, s->name);
		if (rec) {
			compared++;
			if (!tr_compare(rec, "kernel", t1, "fake", stdout)) {
				printf("# %s: the fake differs from the kernel's transcript (%s)\n",
				       s->name, file);
				bad++;
			}
			free(rec);
		}
		free(t1);
		free(t2);
	}
	printf("# %s: %d scenarios compared with %s/%s\n",
	       kind == FAKE_73 ? "7.3" : "v3", compared, SCEN_DIR, file);
	CHECK_EQ(bad, 0);
}

static void scenarios_on_fake_73(void)
{
	on_fake(FAKE_73);
}

static void scenarios_on_fake_v3(void)
{
	on_fake(FAKE_V3);
}

UNIT_TESTS(T(scenarios_on_fake_73), T(scenarios_on_fake_v3));
