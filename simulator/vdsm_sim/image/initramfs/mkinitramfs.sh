#!/bin/sh
# Assemble the simulator guest's initramfs (runs in the builder stage of Dockerfile.sim).
#
#   mkinitramfs.sh KERNEL_ROOT GUEST_DIR OUT_DIR FACTS_DIR
# (FACTS_DIR: the stdlib-only files of vdsmlib that hold DSM's facts, as package vdsmlib/)
#
# KERNEL_ROOT is a `dpkg -x` of Debian's linux-image-*-cloud-amd64 package. Writes
# OUT_DIR/vmlinuz and OUT_DIR/initrd.img (gzip cpio): busybox, the virtio modules, the builder's
# python3 (Debian's, 3.13 on trixie) with the libraries it links and a pruned, precompiled stdlib, the guest package at
# /opt/sim/guest, and /init.
set -eu

KROOT=$1
GUEST=$2
OUT=$3
FACTS=$4
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(mktemp -d /tmp/initramfs.XXXXXX)
# mktemp makes it 0700, and it becomes the guest's /: users other than root (the SMB server
# opens shares as the logged-in user) could not reach anything below it.
chmod 755 "$ROOT"
PY=$(readlink -f /usr/bin/python3 | sed 's,.*/,,')
echo "python $PY"
PYLIB=/usr/lib/$PY

# trixie's kernel package ships merged-/usr paths (usr/lib/modules); older ones lib/modules
if [ ! -e "$KROOT/lib" ] && [ -d "$KROOT/usr/lib/modules" ]; then
    ln -s usr/lib "$KROOT/lib"
fi
KVER=$(ls "$KROOT/lib/modules")
echo "kernel $KVER"

# Merged-/usr layout like Debian, so paths printed by ldd resolve unchanged.
mkdir -p "$ROOT"/usr/bin "$ROOT"/usr/sbin "$ROOT"/usr/lib "$ROOT"/usr/lib64
for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOT/$d"; done
mkdir -p "$ROOT"/dev "$ROOT"/proc "$ROOT"/sys "$ROOT"/tmp "$ROOT"/run "$ROOT"/etc \
    "$ROOT"/root "$ROOT"/opt/sim "$ROOT"/var/log
# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$ROOT/dev/console" c 5 1 || echo "mknod /dev/console failed; init redirects later"

# busybox and its applets
cp /bin/busybox "$ROOT/usr/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$ROOT/usr/bin/$applet" ] || ln -s busybox "$ROOT/usr/bin/$applet"
done

# virtio modules with their dependencies, resolved by kmod against the package's tree
depmod -b "$KROOT" "$KVER"
# and the data plane's servers: ksmbd (SMB 2/3; with the crypto its dialects sign and encrypt
# with), nfsd (NFSv4), LIO's iSCSI target with its file backstore. Stored uncompressed: the
# kernel then loads them without decompressing xz under TCG, and the gzip of the whole
# initramfs compresses them anyway.
for mod in virtio_pci virtio_net virtio_blk virtio_scsi sd_mod virtio_rng virtio_console virtio_balloon \
    ksmbd nls_utf8 md4 cmac ccm gcm arc4 \
    nfsd iscsi_target_mod target_core_file; do
    modprobe -d "$KROOT" -S "$KVER" --show-depends "$mod" | while read -r kind path _; do
        [ "$kind" = insmod ] || continue
        rel=${path#"$KROOT"/}
        rel=lib/modules/${rel#*lib/modules/}
        mkdir -p "$ROOT/usr/$(dirname "$rel")"
        case "$rel" in
        *.ko.xz) xz -dc "$path" > "$ROOT/usr/${rel%.xz}" ;;
        *) cp "$path" "$ROOT/usr/$rel" ;;
        esac
    done
done
cp "$KROOT/lib/modules/$KVER"/modules.order "$KROOT/lib/modules/$KVER"/modules.builtin* \
    "$ROOT/usr/lib/modules/$KVER/"
depmod -b "$ROOT" "$KVER"
echo "modules: $(cd "$ROOT/usr/lib/modules/$KVER" && find . -name '*.ko*' | sed 's,.*/,,' | tr '\n' ' ')"

# python3 and a pruned stdlib. Dropped: tests, GUI, packaging tools, docs, databases,
# terminal UIs and everything else a headless HTTP application does not import.
cp "/usr/bin/$PY" "$ROOT/usr/bin/$PY"
ln -s "$PY" "$ROOT/usr/bin/python3"
mkdir -p "$ROOT$PYLIB"
tar -C "$PYLIB" -c \
    --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./lib2to3 \
    --exclude=./ensurepip --exclude=./distutils --exclude=./pydoc_data --exclude=./turtledemo \
    --exclude=./unittest --exclude=./venv --exclude=./sqlite3 --exclude=./curses \
    --exclude=./dbm --exclude='./config-*' --exclude=./turtle.py --exclude=./pydoc.py \
    --exclude=./doctest.py --exclude=./sitecustomize.py --exclude=./_pydecimal.py \
    --exclude=./__phello__ --exclude=./_pyrepl --exclude=./site-packages --exclude=./dist-packages \
    --exclude=__pycache__ \
    --exclude='./lib-dynload/_tkinter*' --exclude='./lib-dynload/_curses*' \
    --exclude='./lib-dynload/_dbm*' --exclude='./lib-dynload/_gdbm*' \
    --exclude='./lib-dynload/_sqlite3*' --exclude='./lib-dynload/readline*' \
    --exclude='./lib-dynload/_test*' --exclude='./lib-dynload/_ctypes_test*' \
    --exclude='./lib-dynload/xxlimited*' --exclude='./lib-dynload/_xxtestfuzz*' \
    --exclude='./lib-dynload/audioop*' --exclude='./lib-dynload/nis*' \
    . | tar -C "$ROOT$PYLIB" -x

# shared libraries of python and of the extension modules kept
libs=$( { ldd "/usr/bin/$PY"; for so in "$ROOT$PYLIB"/lib-dynload/*.so; do ldd "$so"; done; } \
    | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u)
for lib in $libs; do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done

# The data plane's userland, from Debian's packages, with the libraries they link:
# ksmbd-tools (ksmbd.mountd answers the kernel server's logins and share lookups; one
# multi-call binary), nfs-kernel-server (rpc.nfsd, rpc.mountd for the kernel's export upcalls,
# exportfs) and mke2fs (formats the data disk as /volume1 on first boot).
bins="/usr/libexec/ksmbd.tools /usr/sbin/rpc.nfsd /usr/sbin/rpc.mountd /usr/sbin/exportfs /usr/sbin/mke2fs"
mkdir -p "$ROOT/usr/libexec"
for b in $bins; do
    cp -L "$b" "$ROOT$b"
done
for name in ksmbd.mountd ksmbd.control ksmbd.adduser ksmbd.addshare; do
    ln -s ../libexec/ksmbd.tools "$ROOT/usr/sbin/$name"
done
ln -sf mke2fs "$ROOT/usr/sbin/mkfs.ext4"
for lib in $(for b in $bins; do ldd "$b"; done | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | sort -u); do
    [ -e "$ROOT$lib" ] && continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done
mkdir -p "$ROOT/etc/ksmbd" "$ROOT/var/lib/nfs/v4recovery" "$ROOT/var/lib/nfs/rpc_pipefs" \
    "$ROOT/etc/exports.d" "$ROOT/volume1"
: > "$ROOT/etc/exports"

# Precompile the stdlib to sourceless .pyc files: the guest never reads stdlib sources, and
# both the initramfs and the guest's first imports get smaller and faster.
"$PY" -m compileall -q -b -j 0 -s "$ROOT" -p / "$ROOT$PYLIB" >/dev/null
find "$ROOT$PYLIB" -name '*.py' -delete

# the guest application (sources kept for readable tracebacks; .pyc need no mtime check)
cp -r "$GUEST" "$ROOT/opt/sim/guest"
# DSM's facts, imported by the guest as vdsmlib.dsm (the same files the library imports)
cp -r "$FACTS/vdsmlib" "$ROOT/opt/sim/vdsmlib"
find "$ROOT/opt/sim/guest" "$ROOT/opt/sim/vdsmlib" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m compileall -q --invalidation-mode unchecked-hash -s "$ROOT" -p / "$ROOT/opt/sim/guest" "$ROOT/opt/sim/vdsmlib" \
    >/dev/null

# The device's own keys, made once per image build as DSM makes its own at install: the login
# RSA key that SYNO.API.Encryption hands out (made here, where it takes seconds, not in the TCG
# guest, where it would take minutes) and a self-signed certificate for HTTPS on 5001.
mkdir -p "$ROOT/opt/sim/keys"
PYTHONPATH="$(dirname "$GUEST"):$FACTS" "$PY" -m "$(basename "$GUEST").crypto" > "$ROOT/opt/sim/keys/login-rsa.json"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=VirtualDSM \
    -keyout "$ROOT/opt/sim/keys/https-key.pem" -out "$ROOT/opt/sim/keys/https-cert.pem" 2>/dev/null
chmod 600 "$ROOT/opt/sim/keys/"*

# name resolution from files only: http.server looks up its own address at bind time
printf 'hosts: files\n' > "$ROOT/etc/nsswitch.conf"
printf '127.0.0.1 localhost VirtualDSM\n' > "$ROOT/etc/hosts"

# udhcpc's hook: apply the lease to the interface (DSM gets its address by DHCP too)
mkdir -p "$ROOT/usr/share/udhcpc"
cat > "$ROOT/usr/share/udhcpc/default.script" <<'SCRIPT'
#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
bound | renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
SCRIPT
chmod 755 "$ROOT/usr/share/udhcpc/default.script"
# root, nobody (NFS squashing) and DSM's "users" group (the data plane adds the admin to it)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$ROOT/etc/passwd"
printf 'root:x:0:\nusers:x:100:\nnogroup:x:65534:\n' > "$ROOT/etc/group"

install -m 755 "$HERE/init" "$ROOT/init"

# smoke-test the pruned python against its own tree before packing
chroot "$ROOT" /usr/bin/python3 -c 'import http.server, json, socketserver, email.message, hashlib, secrets, random, urllib.parse, asyncio, base64, hmac, uuid, html, mimetypes, gzip, zlib, logging, argparse, dataclasses, ssl'
PYTHONPATH=/opt/sim chroot "$ROOT" /usr/bin/python3 -c 'import guest'

mkdir -p "$OUT"
cp "$KROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
(cd "$ROOT" && find . -print0 | sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -6 > "$OUT/initrd.img"
echo "$KVER" > "$OUT/kernel-version"
echo "initramfs: $(du -sh "$ROOT" | cut -f1) unpacked, $(du -h "$OUT/initrd.img" | cut -f1) gzip; kernel $(du -h "$OUT/vmlinuz" | cut -f1)"
rm -rf "$ROOT"
