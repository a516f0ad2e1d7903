# SPDX-License-Identifier: GPL-2.0
# Front door of the project. Each target is one script in scripts/.
#
#   make run      build, boot and run the reference fault service demo
#   make check    every test (what CI runs): tree, kernels, selftests, VM
#   make bench    the benchmark, patched against the unpatched base
#   make qemu-base  Debian's QEMU 10 as the iommufd user of the emulated
#                 VT-d's edu device, on the base and the patched kernel
#   make lint     checkpatch, sparse, kernel-doc, bisect build, docs
#   make tree     build/linux = Debian's 7.3 + patches/ (FORCE=1 discards
#                 unexported commits)
#   make export   commits base..HEAD of build/linux -> patches/
#   make soak DURATION=600   a longer stress run on the debug kernel

SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help deps tree export kernel selftests check run bench lint soak \
	userspace clean distclean qemu-base

help:
	@sed -n 's/^#   //p' Makefile

deps:
	@scripts/deps all

tree:
	@scripts/deps core && scripts/tree

export:
	@scripts/export

kernel:
	@scripts/deps core && scripts/tree --keep && scripts/build-kernel patched

selftests: kernel
	@scripts/build-selftests patched

check:
	@scripts/check

run:
	@scripts/run

bench:
	@scripts/bench

qemu-base:
	@scripts/qemu-base

lint:
	@scripts/lint

soak:
	@scripts/soak $(DURATION)

userspace:
	@$(MAKE) -C userspace

clean:
	rm -rf build/out build/check
	$(MAKE) -C userspace clean

distclean:
	rm -rf build
