// SPDX-License-Identifier: MIT
/*
 * The scenarios' transcript and the world they start from. See scen.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"
#include "scen.h"

static FILE *out;		/* the transcript being written */
static bool failed;
uint32_t tr_last_cookie;
uint32_t tr_cookies[64];
unsigned int tr_nr_cookies;

/* Names of the object IDs seen */
static struct {
	uint32_t id;
	char name[24];
} names[64];
static unsigned int nr_names;

void tr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static const char *err_name(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "E?";
}

void tr_rc(const char *what, long rc)
{
	if (rc < 0)
		tr("%s: %s", what, err_name(-rc));
	else
		tr("%s: %ld", what, rc);
}

long sys_rc(long rc)
{
	return rc < 0 ? -errno : rc;
}

void tr_name(uint32_t id, const char *fmt, ...)
{
	va_list ap;

	if (nr_names == 64)
		return;
	names[nr_names].id = id;
	va_start(ap, fmt);
	vsnprintf(names[nr_names].name, sizeof(names[0].name), fmt, ap);
	va_end(ap);
	nr_names++;
}

const char *tr_id(uint32_t id)
{
	static char unknown[4][16];
	static unsigned int k;
	unsigned int i;

	for (i = nr_names; i--;)
		if (names[i].id == id)
			return names[i].name;
	k = (k + 1) % 4;
	snprintf(unknown[k], sizeof(unknown[k]), "id?%u", id ? 1 : 0);
	return unknown[k];
}

static void tr_pgfault(const struct iommu_hwpt_pgfault *pf)
{
	tr("  fault %s flags %#x pasid %u grpid %u perm %#x addr %#llx len %u cookie %#x",
	   tr_id(pf->dev_id), pf->flags, pf->pasid, pf->grpid, pf->perm,
	   (unsigned long long)pf->addr, pf->length, pf->cookie);
	if (pf->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) {
		tr_last_cookie = pf->cookie;
		if (tr_nr_cookies < 64)
			tr_cookies[tr_nr_cookies++] = pf->cookie;
	}
}

void tr_read_fault(const char *what, int fd, size_t len, bool header)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	struct iommufd_vevent_header h;
	struct iommu_hwpt_pgfault pf;
	unsigned char *buf = calloc(1, len + 1);
	ssize_t n = be->read(fd, buf, len);
	size_t at = 0;

	if (n < 0) {
		tr("%s: read(%zu): %s", what, len, err_name(errno));
		free(buf);
		return;
	}
	tr("%s: read(%zu): %zd", what, len, n);
	while (at < (size_t)n) {
		if (header) {
			if (n - at < hsz)
				break;
			memcpy(&h, buf + at, hsz);
			at += hsz;
			tr("  header flags %#x seq %u", h.flags, h.sequence);
			if (h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				continue;
		}
		if (n - at < sizeof(pf)) {
			tr("  %zu bytes left", n - at);
			break;
		}
		memcpy(&pf, buf + at, sizeof(pf));
		at += sizeof(pf);
		tr_pgfault(&pf);
	}
	free(buf);
}

void tr_read_vevent(const char *what, int fd, size_t len)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	struct iommufd_vevent_header h;
	unsigned char *buf = calloc(1, len + 1);
	ssize_t n = be->read(fd, buf, len);
	size_t at = 0;
	uint32_t v;

	if (n < 0) {
		tr("%s: read(%zu): %s", what, len, err_name(errno));
		free(buf);
		return;
	}
	tr("%s: read(%zu): %zd", what, len, n);
	while (at + hsz <= (size_t)n) {
		memcpy(&h, buf + at, hsz);
		at += hsz;
		if (h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
			tr("  lost seq %u flags %#x", h.sequence, h.flags);
			continue;
		}
		memcpy(&v, buf + at, 4);
		at += 4;
		tr("  event seq %u flags %#x virt_id %#x", h.sequence, h.flags,
		   v);
	}
	free(buf);
}

void tr_answer(const char *what, int fd, uint32_t cookie, uint32_t code)
{
	struct iommu_hwpt_page_response r = { .cookie = cookie, .code = code };

	tr_rc(what, sys_rc(be->write(fd, &r, sizeof(r))));
}

void tr_poll(const char *what, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	tr("%s: %s", what, poll(&p, 1, 0) == 1 ? "readable" : "not readable");
}

void tr_eventfd(const char *what, int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v = 0;

	/* The count says edges: a wake-up or not, not how many */
	if (poll(&p, 1, 0) == 1 && read(efd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	tr("%s: eventfd %s", what, v ? "signalled" : "quiet");
}

void tr_fdinfo(const char *what, int fd)
{
	FILE *f = be->fdinfo(fd);
	char line[128], *v;
	bool after_ino = false;

	if (!f) {
		tr("%s: fdinfo: %s", what, err_name(errno));
		return;
	}
	tr("%s: fdinfo", what);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		v = strchr(line, ':');
		if (!v)
			continue;
		*v++ = 0;
		/* What every file shows is no business of the queue's */
		if (!strcmp(line, "ino")) {
			after_ino = true;
			continue;
		}
		if (!after_ino)
			continue;
		/*
		 * V3-UAPI.md names the queue's flags "flags"; the series'
		 * kernel (v2, and v3 so far) prints "fault_flags". The
		 * library reads both: compare the value, not the name.
		 */
		tr("  %s %llu", strcmp(line, "fault_flags") ? line : "flags",
		   strtoull(v, NULL, 0));
	}
	fclose(f);
}

void tr_counters(const char *what, int iommufd, uint32_t dev_id)
{
	struct mock_counters c;
	int rc = mock_counters(iommufd, dev_id, &c);

	if (rc) {
		tr_rc(what, rc);
		return;
	}
	tr("%s: groups %llu success %llu invalid %llu failure %llu", what,
	   (unsigned long long)c.groups, (unsigned long long)c.success,
	   (unsigned long long)c.invalid, (unsigned long long)c.failure);
}

void tr_stats(const char *what, struct iof_queue *q)
{
	struct iof_stats s;

	iof_queue_get_stats(q, &s, sizeof(s));
	tr("%s: groups %llu answered %llu success %llu refused %llu malformed %llu outstanding %u",
	   what, (unsigned long long)s.groups,
	   (unsigned long long)s.answered,
	   (unsigned long long)s.answered_success,
	   (unsigned long long)s.refused, (unsigned long long)s.malformed,
	   s.outstanding);
	tr("%s: stalls %llu stale %llu nomem %llu not_injected %llu superseded %llu orphaned %u",
	   what, (unsigned long long)s.stalls, (unsigned long long)s.stale,
	   (unsigned long long)s.nomem_invalid,
	   (unsigned long long)s.not_injected,
	   (unsigned long long)s.superseded, s.orphaned);
	tr("%s: seq next %u lost %llu gaps %llu lost_headers %llu errors %llu",
	   what, s.seq.next, (unsigned long long)s.seq.lost,
	   (unsigned long long)s.seq.gaps,
	   (unsigned long long)s.seq.lost_headers,
	   (unsigned long long)s.seq.errors);
}

bool scheck(bool cond, const char *what, int line)
{
	if (!cond) {
		tr("CHECK FAILED (line %d): %s", line, what);
		failed = true;
	}
	return cond;
}

int world_new(struct world *w)
{
	int rc;

	*w = (struct world){ .fd = be->open() };
	if (w->fd < 0)
		return w->fd;
	rc = mock_ioas_alloc(w->fd, &w->ioas);
	if (!rc)
		rc = mock_device(w->fd, w->ioas, 0, &w->stdev, &w->dev);
	if (!rc)
		rc = mock_parent_alloc(w->fd, w->dev, w->ioas, &w->parent);
	if (!rc)
		rc = mock_viommu_alloc(w->fd, w->dev, w->parent, &w->viommu);
	tr_name(w->dev, "dev");
	tr_name(w->viommu, "viommu");
	if (rc)
		tr_rc("world", rc);
	return rc;
}

void world_end(struct world *w)
{
	/* The last close of the iommufd takes everything with it */
	if (be->fake)
		fake_shutdown();
	else if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int world_queue(struct world *w, uint32_t flags, int efd, uint32_t depth,
		uint32_t *fault_id, int *fault_fd, uint32_t *hwpt_id)
{
	int rc = mock_fault_alloc(w->fd, flags, efd, depth, fault_id, fault_fd);

	if (rc)
		return rc;
	tr_name(*fault_id, "queue");
	rc = mock_nested_alloc(w->fd, w->dev, w->parent, *fault_id, hwpt_id);
	if (!rc)
		rc = mock_replace(w->fd, w->stdev, *hwpt_id);
	tr_name(*hwpt_id, "hwpt");
	return rc;
}

FILE *tr_swap(FILE *f)
{
	FILE *old = out;

	out = f;
	return old;
}

bool tr_failed(void)
{
	return failed;
}

bool scen_run(const struct scenario *s, char **transcript)
{
	size_t len;

	out = open_memstream(transcript, &len);
	failed = false;
	nr_names = 0;
	tr_last_cookie = 0;
	tr_nr_cookies = 0;
	s->fn();
	fclose(out);
	out = NULL;
	return !failed;
}

/* Line by line; the first lines that differ go to @diag as TAP comments */
bool tr_compare(const char *a, const char *an, const char *b, const char *bn,
		FILE *diag)
{
	unsigned int line = 1, shown = 0;
	const char *ea, *eb;

	while (*a || *b) {
		ea = strchrnul(a, '\n');
		eb = strchrnul(b, '\n');
		if (ea - a != eb - b || memcmp(a, b, ea - a)) {
			if (!shown)
				fprintf(diag, "#   first difference, line %u:\n",
					line);
			fprintf(diag, "#   %-8s| %.*s\n", an, (int)(ea - a), a);
			fprintf(diag, "#   %-8s| %.*s\n", bn, (int)(eb - b), b);
			if (++shown == 4)
				return false;
		}
		a = *ea ? ea + 1 : ea;
		b = *eb ? eb + 1 : eb;
		line++;
	}
	return !shown;
}

/* Every scenario, in order */
const struct scenario *scen_all(unsigned int i)
{
	if (i < nr_scen_fault)
		return &scen_fault[i];
	i -= nr_scen_fault;
	if (i < nr_scen_more)
		return &scen_more[i];
	i -= nr_scen_more;
	return i < nr_scen_lib ? &scen_lib[i] : NULL;
}
