#!/usr/bin/env bash
# check-sdk.sh BUILD_DIR [--deb] - what a third-party plugin author does, from outside the tree:
#   1. cmake --install BUILD_DIR into a temporary prefix;
#   2. build sdk/template out of tree twice: with pkg-config (its Makefile) and with CMake
#      (find_package(dsnn 0.M), M the ABI major); find_package of another ABI's SDK (0.M-1,
#      0.M+1) must fail;
#   3. load it with the installed dsnn-host next to the shipped plugins (--default-plugins) and
#      run a tiny experiment with it; install it into the SDK's plugin directory and see it
#      loaded by default;
#   4. move the installed tree: pkg-config's flags and dsnn-host follow (relocatable);
#   5. with --deb: build the Debian packages (cpack, prefix /usr), check their file lists and
#      dependencies; where this runs as root with apt (CI), install them with apt-get, run
#      dsnn-host list, an experiment on the shipped plugins and the template built against the
#      system SDK, then remove them again.
# Exit 0 if every step passed; the first failure stops it with its reason.
set -euo pipefail
BUILD="$(cd "${1:?usage: check-sdk.sh BUILD_DIR [--deb]}" && pwd)"
DEB="${2:-}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
T="$(mktemp -d "${TMPDIR:-/tmp}/dsnn-sdk-XXXXXX")"
trap 'rm -rf "$T"' EXIT
fail() { echo "check-sdk: FAILED: $*" >&2; exit 1; }
step() { echo "== check-sdk: $*"; }
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
# The SDK's minor (0.x: = the plugin ABI major), from the one source of the version.
MINOR="$(sed -n 's/^#define DSNN_VERSION_MINOR \([0-9]*\)$/\1/p' "$SRC/sdk/include/dsnn/dsnn.h")"
[ -n "$MINOR" ] || fail "no DSNN_VERSION_MINOR in sdk/include/dsnn/dsnn.h"

step "install into a temporary prefix"
P="$T/prefix"
cmake --install "$BUILD" --prefix "$P" >/dev/null
HOST="$P/bin/dsnn-host"
LIBDIR="$(cd "$P" && dirname "$(find . -name dsnn.pc -path '*/pkgconfig/*' | head -1)")"
LIBDIR="${LIBDIR#./}"; LIBDIR="${LIBDIR%/pkgconfig}"
[ -f "$P/$LIBDIR/pkgconfig/dsnn.pc" ] || fail "no dsnn.pc installed"
[ -f "$P/$LIBDIR/cmake/dsnn/dsnnConfig.cmake" ] || fail "no CMake package installed"
[ -x "$HOST" ] || fail "no dsnn-host installed"
"$HOST" --version | grep -q "default plugin directory $P/$LIBDIR/dsnn/plugins\$" ||
    fail "dsnn-host --version names another default plugin directory: $("$HOST" --version)"

cfg() { # cfg FILE MODEL: a 2-epoch experiment on generated data
    cat >"$1" <<EOF
experiment = { name = "sdk"; epochs = 2; seed = 3; threads = 1; };
dataset = { plugin = "synthetic"; n_classes = 4; shape = [16]; n_train = 200; n_test = 50; };
network = { plugin = "mlp"; hidden_sizes = [32]; };
model = { plugin = "$2"; learning_rate = 0.1; };
EOF
}

step "template plugin with pkg-config (Makefile)"
cp -r "$SRC/sdk/template" "$T/tpl-pc"
export PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig"
pkg-config --cflags --libs dsnn | grep -q -- "-I$P/$LIBDIR/pkgconfig/../../include\|-I$P/include" ||
    fail "pkg-config --cflags does not point into the prefix: $(pkg-config --cflags dsnn)"
make -s -C "$T/tpl-pc" >/dev/null
[ -f "$T/tpl-pc/template.so" ] || fail "make built no template.so"

step "template plugin with CMake (find_package(dsnn 0.$MINOR))"
cp -r "$SRC/sdk/template" "$T/tpl-cm"
cmake -S "$T/tpl-cm" -B "$T/tpl-cm/build" -DCMAKE_PREFIX_PATH="$P" >/dev/null
cmake --build "$T/tpl-cm/build" >/dev/null
[ -f "$T/tpl-cm/build/plugins/template.so" ] || fail "CMake built no plugins/template.so"
for v in "0.$((MINOR - 1))" "0.$((MINOR + 1))"; do # another ABI major: refused at configure time by the version file
    mkdir -p "$T/abi-$v"
    printf 'cmake_minimum_required(VERSION 3.18)\nproject(x C)\nfind_package(dsnn %s REQUIRED)\n' \
        "$v" >"$T/abi-$v/CMakeLists.txt"
    if cmake -S "$T/abi-$v" -B "$T/abi-$v/build" -DCMAKE_PREFIX_PATH="$P" >"$T/abi.log" 2>&1; then
        fail "find_package(dsnn $v) accepted the SDK $("$HOST" --version | head -1)"
    fi
    grep -q 'compatible' "$T/abi.log" || fail "find_package(dsnn $v): $(cat "$T/abi.log")"
done

step "load both with the installed host, next to the shipped plugins, and run them"
for so in "$T/tpl-pc" "$T/tpl-cm/build/plugins"; do
    "$HOST" --plugin-dir "$so" --default-plugins list >"$T/list.txt"
    grep -q "template .*$so/template.so" "$T/list.txt" || fail "template not listed: $(cat "$T/list.txt")"
    grep -q "^  set " "$T/list.txt" || fail "--default-plugins did not load the shipped plugins"
done
cfg "$T/sdk.cfg" template
sed -i 's/learning_rate = 0.1;/learning_rate = 0.1; on_perc = 0.3;/' "$T/sdk.cfg"
ran() { # ran RESULTS_DIR: the trial terminated, 2 epochs, and the sparse layers were rewired
    grep -q '"status": *"TERMINATED"' "$1/sdk/journal.jsonl" || fail "$1: the trial did not end TERMINATED"
    [ "$(wc -l <"$1/sdk/trial_00000/result.json")" -eq 2 ] || fail "$1: not 2 epochs of results"
    grep -q '"pruned_fc1": [1-9]' "$1/sdk/trial_00000/result.json" || fail "$1: fc1 was never rewired"
}
"$HOST" --plugin-dir "$T/tpl-cm/build/plugins" --default-plugins run "$T/sdk.cfg" \
    --results "$T/results" --quiet
ran "$T/results"
# DSNN_PLUGIN_PATH: an empty element is the default directory
DSNN_PLUGIN_PATH="$T/tpl-pc:" "$HOST" list | grep -q "^  set " ||
    fail "DSNN_PLUGIN_PATH='DIR:' did not add the default directory"

step "install the plugin into the SDK's prefix: loaded by default"
cmake --install "$T/tpl-cm/build" --prefix "$P" >/dev/null
"$HOST" list | grep -q "template .*$P/$LIBDIR/dsnn/plugins/template.so" ||
    fail "an installed plugin is not loaded by default: $("$HOST" list)"

step "move the installed tree (relocatable)"
mv "$P" "$T/moved"
P="$T/moved"
export PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig"
inc="$(pkg-config --variable=includedir dsnn)"
[ -f "$inc/dsnn/dsnn.h" ] || fail "after a move, pkg-config's includedir $inc has no dsnn/dsnn.h"
[ "$(pkg-config --variable=plugindir dsnn)" -ef "$P/$LIBDIR/dsnn/plugins" ] ||
    fail "after a move, plugindir is $(pkg-config --variable=plugindir dsnn)"
"$P/bin/dsnn-host" list | grep -q "template .*$P/$LIBDIR/dsnn/plugins/template.so" ||
    fail "after a move, dsnn-host does not find its plugins"
make -s -C "$T/tpl-pc" clean >/dev/null && make -s -C "$T/tpl-pc" >/dev/null ||
    fail "after a move, the pkg-config build fails"
unset PKG_CONFIG_PATH

[ "$DEB" = "--deb" ] || { echo "check-sdk: all passed"; exit 0; }

step "Debian packages (cpack, prefix /usr)"
B="$T/build-deb"
# without MPI (-DDSNN_MPI=OFF): the runtime package needs no Open MPI libraries
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DDSNN_BUILD_TESTS=OFF -DDSNN_MPI=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
(cd "$B" && cpack -G DEB >/dev/null)
# a build without MPI started as one of several MPI processes says so (exit 2)
set +e
OMPI_COMM_WORLD_SIZE=3 "$B/bin/dsnn-host" --version >"$T/nompi.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'built without MPI' "$T/nompi.log" ||
    fail "a build without MPI under a 3-process launcher: exit $rc, $(cat "$T/nompi.log")"
RUN_DEB="$(ls "$B"/dsnn_*.deb)"
DEV_DEB="$(ls "$B"/dsnn-dev_*.deb)"
MA="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"
V="$("$B/bin/dsnn-host" --version | sed -n '1s/.* //p')"
contents() { # the files and links of a package, one per line ("link -> target")
    dpkg-deb -c "$1" | awk '{ p = $6; sub(/^\./, "", p); if ($7 == "->") p = p " -> " $8; print p }' |
        grep -v '/$' | sort
}
contents "$RUN_DEB" >"$T/run.list"
contents "$DEV_DEB" >"$T/dev.list"
echo "-- $(basename "$RUN_DEB"):"; sed 's/^/   /' "$T/run.list"
echo "-- $(basename "$DEV_DEB"):"; sed 's/^/   /' "$T/dev.list"
ABI="$("$B/bin/dsnn-host" --version | sed -n 's/^plugin ABI \([0-9]*\)\..*/\1/p')"
grep -qx "/usr/lib/$MA/libdsnn.so.$ABI -> libdsnn.so.$V" "$T/run.list" ||
    fail "the runtime package lacks the soname link libdsnn.so.$ABI"
grep -qx "/usr/lib/$MA/libdsnn.so -> libdsnn.so.$ABI" "$T/dev.list" ||
    fail "the dev package lacks the link libdsnn.so"
for f in /usr/bin/dsnn-host "/usr/lib/$MA/libdsnn.so.$V" "/usr/lib/$MA/dsnn/plugins/set.so" \
         "/usr/lib/$MA/dsnn/plugins/idx.so" "/usr/lib/$MA/dsnn/plugins/grid.so"; do
    grep -q "^$f\( ->\|\$\)" "$T/run.list" || fail "$(basename "$RUN_DEB") lacks $f"
done
for f in /usr/include/dsnn/dsnn.h /usr/include/dsnn/plugin.h "/usr/lib/$MA/pkgconfig/dsnn.pc" \
         "/usr/lib/$MA/cmake/dsnn/dsnnConfig.cmake" "/usr/lib/$MA/cmake/dsnn/dsnnConfigVersion.cmake" \
         "/usr/lib/$MA/cmake/dsnn/dsnnTargets.cmake" "/usr/lib/$MA/cmake/dsnn/DsnnPlugin.cmake"; do
    grep -q "^$f\( ->\|\$\)" "$T/dev.list" || fail "$(basename "$DEV_DEB") lacks $f"
done
if grep -q '/include/\|\.pc$\|/cmake/' "$T/run.list"; then fail "the runtime package holds SDK files"; fi
if grep -q 'test-plugins\|/bin/dsnn-bench\|/bin/test_' "$T/run.list"; then
    fail "the runtime package holds tests"
fi
DEPS="$(dpkg-deb -f "$RUN_DEB" Depends)"
echo "-- Depends of dsnn: $DEPS"
echo "-- Depends of dsnn-dev: $(dpkg-deb -f "$DEV_DEB" Depends)"
for d in libopenblas0 libconfig9 zlib1g libgomp1 libc6; do
    echo "$DEPS" | grep -q "\b$d\b" || fail "dsnn does not depend on $d: $DEPS"
done
dpkg-deb -f "$DEV_DEB" Depends | grep -q "dsnn (= $V-1)" || fail "dsnn-dev does not depend on dsnn (= $V-1)"

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null || [ "${DSNN_CHECK_DEB_INSTALL:-1}" = 0 ]; then
    echo "check-sdk: all passed (the packages were not installed: not root, or DSNN_CHECK_DEB_INSTALL=0)"
    exit 0
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
if installed dsnn || installed dsnn-dev; then
    echo "check-sdk: all passed (dsnn is installed on this system already: the packages were not installed over it)"
    exit 0
fi
step "install the packages (apt-get install ./*.deb), use them, remove them"
trap 'apt-get purge -y -qq dsnn dsnn-dev >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$RUN_DEB" "$DEV_DEB" >/dev/null
/usr/bin/dsnn-host --version | grep -q "default plugin directory /usr/lib/$MA/dsnn/plugins\$" ||
    fail "the installed host's default plugin directory: $(/usr/bin/dsnn-host --version)"
/usr/bin/dsnn-host list | grep -q "^  set " || fail "/usr/bin/dsnn-host list shows no shipped plugin"
cfg "$T/deb.cfg" set
sed -i 's/learning_rate = 0.1;/learning_rate = 0.1; on_perc = 0.3;/' "$T/deb.cfg"
(cd "$T" && /usr/bin/dsnn-host run deb.cfg --results "$T/deb-results" --quiet)
ran "$T/deb-results"
cp -r "$SRC/sdk/template" "$T/tpl-sys"
make -s -C "$T/tpl-sys" >/dev/null || fail "the template does not build against the system SDK (pkg-config)"
cmake -S "$T/tpl-sys" -B "$T/tpl-sys/build" >/dev/null && cmake --build "$T/tpl-sys/build" >/dev/null ||
    fail "the template does not build against the system SDK (find_package)"
/usr/bin/dsnn-host --plugin-dir "$T/tpl-sys/build/plugins" --default-plugins run "$T/sdk.cfg" \
    --results "$T/sys-results" --quiet || fail "the template built against the system SDK does not run"
ran "$T/sys-results"
apt-get purge -y -qq dsnn dsnn-dev >/dev/null
[ ! -e /usr/bin/dsnn-host ] || fail "apt-get purge left /usr/bin/dsnn-host"
echo "check-sdk: all passed (packages built, installed, used and removed)"
