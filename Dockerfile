# The build base: a vdsm/virtual-dsm compatible image made committable and snapshot-ready.
#
#   docker build --build-arg BASE=vdsm/virtual-dsm:7.41@sha256:... \
#                --build-arg PATCH_FILE=/run/disk.sh -t vdsm-ci/base:x .
#
# PATCH_FILE is the script of the base release that attaches the boot and system disks:
# /run/disk.sh up to and including virtual-dsm 7.62, /run/prepare.sh from 7.63 on (the
# simulator, a twin of 7.41: /run/disk.sh).
#
# 1. Boot and system disks become qcow2 (upstream attaches them raw, and `savevm` needs every
#    writable disk to support snapshots): the script that attaches them is patched to convert
#    them in place and attach them as qcow2. The build FAILS if the patch did not apply, so a
#    virtual-dsm release that moved that code cannot produce an image that silently never
#    snapshots.
# 2. The image is rebased onto scratch to drop `VOLUME /storage`: `docker commit` does not capture
#    volumes, and the checkpoints are commits. vdsmlib restores the base image's ENV, ENTRYPOINT
#    and EXPOSE afterwards (a Dockerfile cannot copy another image's config).
#    /storage is created explicitly: a VOLUME directory is not part of the upstream image's
#    files under BuildKit, so the copy would lack it, and virtual-dsm's reset.sh exits 13
#    ("Storage folder (/storage) not found") without it.
ARG BASE=vdsm-ci/sim:latest
FROM ${BASE} AS upstream
ARG PATCH_FILE=/run/disk.sh
COPY qcow2.sh /run/vdsm-ci-qcow2.sh
RUN set -eu; f="${PATCH_FILE}"; \
    test -f "$f" || { echo "vdsm-ci: $f does not exist in this image: set base.patch_file in params" >&2; exit 1; }; \
    sed -i -E 's/^([[:space:]]*)DISK_OPTS\+=\$\(createDevice "(\$(boot|BOOT|system|SYSTEM))"(.*)"raw"(.*)$/\1\/run\/vdsm-ci-qcow2.sh "\2" || exit 83\n\1DISK_OPTS+=$(createDevice "\2"\4"qcow2"\5/' "$f"; \
    n=$(grep -cE 'createDevice "\$(boot|BOOT|system|SYSTEM)".*"qcow2"' "$f" || true); \
    test "$n" = 2 || { echo "vdsm-ci: the qcow2 patch did not apply to $f (matched $n of 2 disk lines): this base image attaches its disks differently; update base.patch_file or Dockerfile" >&2; exit 1; }; \
    chmod +x /run/vdsm-ci-qcow2.sh; \
    mkdir -p /storage

FROM scratch
COPY --from=upstream / /
ENTRYPOINT ["/usr/bin/tini", "-s", "/run/entry.sh"]
EXPOSE 5000 5001 445 3260 2049
