// SPDX-License-Identifier: MIT
/*
 * A small consumer of libiofault as a VMM builds one: against the installed
 * headers and library, found with pkg-config (tests/install.sh). It needs
 * no kernel: it checks the version and runs the parsers over messages as
 * read() returns them.
 */
#include <stdio.h>
#include <string.h>

#include <iofault.h>

static unsigned int groups, events, lost;

static int on_group(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	groups += g->nr_faults == 2 && g->seq == 0;
	/* Answered with no kernel behind it: buffered, never written */
	return 0;
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	lost += count;
}

static void on_event(struct iof_veventq *q, const struct iof_vevent *ev,
		     void *arg)
{
	events += ev->decoded && ev->u.selftest.virt_id == 0x42;
}

int main(void)
{
	const struct iof_ops ops = { .page_request = on_group, .lost = on_lost };
	const struct iof_vevent_ops vops = { .event = on_event };
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
	};
	struct iommufd_vevent_header h = { .sequence = 0 };
	struct iommu_hwpt_pgfault pf = { .dev_id = 1, .cookie = 0x8001 };
	unsigned char buf[256];
	struct iof_veventq *vq;
	struct iof_queue *q;
	uint32_t virt_id = 0x42;
	size_t n = 0;

	if (iof_version_major() != IOF_VERSION_MAJOR) {
		printf("consumer: built for libiofault %d, runs with %d\n",
		       IOF_VERSION_MAJOR, iof_version_major());
		return 1;
	}
	/* Two faults of one group, sequence 0 and 1 */
	memcpy(buf + n, &h, sizeof(h));
	n += sizeof(h);
	memcpy(buf + n, &pf, sizeof(pf));
	n += sizeof(pf);
	h.sequence = 1;
	pf.flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
	memcpy(buf + n, &h, sizeof(h));
	n += sizeof(h);
	memcpy(buf + n, &pf, sizeof(pf));
	n += sizeof(pf);
	q = iof_parser_new(IOF_FAULT_QUEUE_HEADER);
	if (!q || iof_parse(q, buf, n, &ops, NULL) != 2 ||
	    !iof_outstanding(q, 0x8001))
		return 1;
	iof_parser_free(q);

	n = 0;
	h.sequence = 0;
	memcpy(buf + n, &h, sizeof(h));
	n += sizeof(h);
	memcpy(buf + n, &virt_id, 4);
	n += 4;
	vq = iof_vparser_new(&vcfg);
	if (!vq || iof_vparse(vq, buf, n, &vops, NULL) != 1)
		return 1;
	iof_vparser_free(vq);
	if (groups != 1 || events != 1 || lost) {
		printf("consumer: groups %u events %u lost %u\n", groups,
		       events, lost);
		return 1;
	}
	printf("consumer: libiofault %d.%d works\n", iof_version_major(),
	       iof_version_minor());
	return 0;
}
