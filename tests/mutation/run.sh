#!/usr/bin/env bash
# tests/mutation/run.sh - mutation testing of dsnn: plants the deliberate bugs of mutations.txt one
# at a time in a copy of the tree and checks that the test suite catches each. Not part of CI.
# See tests/mutation/README.md.
#
#   tests/mutation/run.sh [--work DIR] [--only ID[,ID...]] [--unit-only] [--timeout S]
#                         [--jobs N] [--ctest-jobs N] [--no-baseline] [--fresh]
#                         [--mutations FILE] [--list | --check]
#
# The repository is never modified: its tracked files plus the untracked non-ignored ones are
# copied to DIR/src (only files whose content changed are rewritten, so the build in DIR/build
# stays incremental from one run to the next), mutated there and restored after each mutant.
set -u
set -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LIST="$HERE/mutations.txt"
WORK="${TMPDIR:-/tmp}/dsnn-mutation"
ONLY=""
UNIT_ONLY=0
TIMEOUT=900
JOBS=2
CTEST_JOBS=1
BASELINE=1
FRESH=0
MODE=run

usage() {
    cat <<'EOF'
usage: tests/mutation/run.sh [options]
  --work DIR        work directory (default: $TMPDIR/dsnn-mutation, /tmp if TMPDIR is unset);
                    holds src/ (the copy), build/, logs/ and results.txt
  --only ID[,ID]    only these mutants (default: all of mutations.txt)
  --unit-only       run only `ctest -L unit` per mutant (skip the blackbox and portability suites)
  --timeout S       limit per mutant, build and tests together (default 900 s); a mutant that
                    runs past it during the tests is KILLED (timeout), during the build BUILD-FAIL
  --jobs N          parallel build jobs (default 2)
  --ctest-jobs N    parallel tests (default 1)
  --no-baseline     do not run the suites on the unmutated copy first
  --fresh           delete the work directory first (full copy and full build)
  --mutations FILE  another list (default: tests/mutation/mutations.txt)
  --list            print the mutations and exit
  --check           for each mutant: apply it, build what it touches, report APPLIES /
                    NOT APPLIED / MULTI-LINE / BUILD-FAIL, restore; no tests are run
  -h, --help        this text
Exit status: 0 after a run (whatever the score); --check: 0 if every mutant applies and builds,
1 otherwise; 2 on a usage error or when the unmutated copy does not build or pass.
EOF
}

die() {
    echo "run.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --work) [ $# -ge 2 ] || die "--work needs a directory"; WORK="$2"; shift 2 ;;
    --work=*) WORK="${1#--work=}"; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs a list of IDs"; ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    --unit-only) UNIT_ONLY=1; shift ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT="$2"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#--timeout=}"; shift ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; JOBS="$2"; shift 2 ;;
    --jobs=*) JOBS="${1#--jobs=}"; shift ;;
    --ctest-jobs) [ $# -ge 2 ] || die "--ctest-jobs needs a number"; CTEST_JOBS="$2"; shift 2 ;;
    --ctest-jobs=*) CTEST_JOBS="${1#--ctest-jobs=}"; shift ;;
    --no-baseline) BASELINE=0; shift ;;
    --fresh) FRESH=1; shift ;;
    --mutations) [ $# -ge 2 ] || die "--mutations needs a file"; LIST="$2"; shift 2 ;;
    --mutations=*) LIST="${1#--mutations=}"; shift ;;
    --list) MODE=list; shift ;;
    --check) MODE=check; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
    esac
done
for v in TIMEOUT JOBS CTEST_JOBS; do
    case "${!v}" in
    '' | *[!0-9]*) die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a positive integer, got '${!v}'" ;;
    esac
    [ "${!v}" -gt 0 ] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a positive integer"
done
[ -f "$LIST" ] || die "no mutation list at $LIST"

# ---- the list: ID | path | sed expression | description ----

IDS=()
PATHS=()
EXPRS=()
DESCS=()

trim() { # prints $1 without leading / trailing blanks
    local s="$1"
    s="${s#"${s%%[![:space:]]*}"}"
    s="${s%"${s##*[![:space:]]}"}"
    printf '%s' "$s"
}

load_list() {
    local line n=0 id path expr desc rest i
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line="${line%$'\r'}"
        case "$(trim "$line")" in '' | '#'*) continue ;; esac
        case "$line" in
        *' | '*' | '*' | '*) ;;
        *) die "$LIST:$n: expected 'ID | path | sed expression | description'" ;;
        esac
        id="$(trim "${line%%' | '*}")"
        rest="${line#*' | '}"
        path="$(trim "${rest%%' | '*}")"
        rest="${rest#*' | '}"
        desc="$(trim "${rest##*' | '}")"
        expr="$(trim "${rest%' | '*}")"
        case "$id" in
        '' | *[!A-Za-z0-9._-]*) die "$LIST:$n: bad ID '$id' (letters, digits, . _ - only)" ;;
        esac
        [ -n "$path" ] && [ -n "$expr" ] && [ -n "$desc" ] || die "$LIST:$n: empty field"
        for i in "${IDS[@]+"${IDS[@]}"}"; do
            [ "$i" != "$id" ] || die "$LIST:$n: duplicate ID '$id'"
        done
        IDS+=("$id")
        PATHS+=("$path")
        EXPRS+=("$expr")
        DESCS+=("$desc")
    done <"$LIST"
    [ ${#IDS[@]} -gt 0 ] || die "$LIST holds no mutation"
}

load_list

SELECTED=() # indexes into IDS
if [ -n "$ONLY" ]; then
    IFS=',' read -r -a wanted <<<"$ONLY"
    for w in "${wanted[@]}"; do
        w="$(trim "$w")"
        [ -n "$w" ] || continue
        found=-1
        for i in "${!IDS[@]}"; do
            if [ "${IDS[$i]}" = "$w" ]; then found=$i; break; fi
        done
        [ "$found" -ge 0 ] || die "--only: no mutation '$w' in $LIST"
        SELECTED+=("$found")
    done
    [ ${#SELECTED[@]} -gt 0 ] || die "--only: empty list"
else
    SELECTED=("${!IDS[@]}")
fi

if [ "$MODE" = list ]; then
    for i in "${SELECTED[@]}"; do
        printf '%-30s %s\n    %s\n    sed: %s\n' "${IDS[$i]}" "${DESCS[$i]}" "${PATHS[$i]}" \
            "${EXPRS[$i]}"
    done
    echo "${#SELECTED[@]} mutation(s) in $LIST"
    exit 0
fi

# ---- the copy ----

command -v git >/dev/null || die "git is needed (to list the repository's files)"
command -v cmake >/dev/null && command -v ctest >/dev/null || die "cmake and ctest are needed"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

case "$WORK" in /*) ;; *) WORK="$PWD/$WORK" ;; esac
case "$WORK/" in
"$REPO"/*) die "the work directory must be outside the repository ($WORK)" ;;
esac
[ "$FRESH" -eq 0 ] || rm -rf -- "$WORK"
SRC="$WORK/src"
BUILD="$WORK/build"
LOGS="$WORK/logs"
mkdir -p "$SRC" "$BUILD" "$LOGS" || die "cannot create $WORK"

export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"

# Copies the repository's files into $SRC. A file whose content is already there keeps its
# time stamp (no rebuild); any other is rewritten (new time stamp: rebuilt). Files of an earlier
# copy that the repository no longer lists are removed.
sync_tree() {
    local manifest="$WORK/manifest" new="$WORK/manifest.new" f copied=0
    git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || die "$REPO is not a git checkout"
    { git -C "$REPO" ls-files -z && git -C "$REPO" ls-files -z --others --exclude-standard; } \
        >"$new" || die "git ls-files failed in $REPO"
    while IFS= read -r -d '' f; do
        [ -f "$REPO/$f" ] || continue # deleted in the work tree, or a submodule
        if [ -f "$SRC/$f" ] && cmp -s -- "$REPO/$f" "$SRC/$f"; then
            continue
        fi
        mkdir -p -- "$(dirname -- "$SRC/$f")" || die "cannot create a folder for $f"
        rm -f -- "$SRC/$f"
        cp --preserve=mode -- "$REPO/$f" "$SRC/$f" || die "cannot copy $f"
        copied=$((copied + 1))
    done <"$new"
    if [ -f "$manifest" ]; then
        # names listed before but not now: gone from the repository
        local -A keep=()
        while IFS= read -r -d '' f; do keep["$f"]=1; done <"$new"
        while IFS= read -r -d '' f; do
            [ -n "${keep["$f"]+x}" ] || rm -f -- "$SRC/$f"
        done <"$manifest"
    fi
    mv -f -- "$new" "$manifest"
    echo "copied $copied changed file(s) of $REPO to $SRC"
}

# ---- mutating and restoring ----

CUR_FILE=""  # the file now mutated (restored on exit)
CUR_BACKUP="$WORK/original.bak"
CHILD=""     # the running `timeout` (its process group holds the build or the tests)

restore() {
    if [ -n "$CUR_FILE" ]; then
        cp -- "$CUR_BACKUP" "$CUR_FILE"
        touch -- "$CUR_FILE" # newer than the mutant's objects: the next build recompiles it
        CUR_FILE=""
    fi
}
on_signal() {
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null # timeout passes it on to its whole process group
        wait "$CHILD" 2>/dev/null
        CHILD=""
    fi
    restore
    echo "run.sh: interrupted (the mutated file was restored)" >&2
    exit 130
}
trap restore EXIT
trap on_signal INT TERM HUP

# limited LIMIT LOG DIR COMMAND...: runs COMMAND in DIR under `timeout LIMIT`, output appended to
# LOG, and returns its status (124: timed out). It runs in the background and is waited for, so
# that a signal to this script is handled at once (its trap stops the command).
limited() {
    local limit="$1" log="$2" dir="$3" rc
    shift 3
    (cd "$dir" && exec timeout -k 20 "$limit" "$@") >>"$log" 2>&1 </dev/null &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=""
    return $rc
}

# Lines that differ between two files of the same line count (the count otherwise).
changed_lines() {
    local a b ra rb n=0
    exec 3<"$1" 4<"$2"
    while :; do
        IFS= read -r a <&3; ra=$?
        IFS= read -r b <&4; rb=$?
        [ $ra -ne 0 ] && [ -z "$a" ] && ra=2
        [ $rb -ne 0 ] && [ -z "$b" ] && rb=2
        [ $ra -eq 2 ] && [ $rb -eq 2 ] && break
        if [ $ra -eq 2 ] || [ $rb -eq 2 ] || [ "$a" != "$b" ]; then n=$((n + 1)); fi
    done
    exec 3<&- 4<&-
    echo "$n"
}

# apply I: mutates file PATHS[I] of the copy. Sets APPLY to APPLIED, NOT-APPLIED, MULTI-LINE(n),
# NO-FILE or SED-ERROR; only APPLIED leaves the file mutated (CUR_FILE set).
APPLY=""
apply() {
    local i="$1" f="$SRC/${PATHS[$1]}" tmp="$WORK/mutant.tmp" n
    APPLY=""
    if [ ! -f "$f" ]; then APPLY="NO-FILE"; return; fi
    if ! sed -e "${EXPRS[$i]}" -- "$f" >"$tmp" 2>"$WORK/sed.err"; then
        APPLY="SED-ERROR"
        return
    fi
    if cmp -s -- "$f" "$tmp"; then APPLY="NOT-APPLIED"; return; fi
    n="$(changed_lines "$f" "$tmp")"
    if [ "$n" != 1 ]; then APPLY="MULTI-LINE($n)"; return; fi
    cp -- "$f" "$CUR_BACKUP" || die "cannot back up $f"
    CUR_FILE="$f"
    cp -- "$tmp" "$f" || die "cannot write $f"
    APPLY="APPLIED"
}

# The build target that holds a file (empty: everything).
target_of() {
    local p="$1" rest
    case "$p" in
    sdk/src/* | sdk/include/*) echo dsnn ;;
    host/main.c) echo dsnn-host ;;
    host/*.c | host/*.h) echo dsnn_hostcore ;;
    plugins/*/*/*)
        rest="${p#plugins/*/}"
        echo "${rest%%/*}"
        ;;
    tests/unit/test_*.c)
        rest="${p##*/}"
        echo "${rest%.c}"
        ;;
    *) echo "" ;;
    esac
}

# ---- building and testing ----

STOP_FLAG=""
case "$(ctest --help 2>/dev/null)" in
*--stop-on-failure*) STOP_FLAG="--stop-on-failure" ;;
esac

configure_and_build() {
    echo "configuring and building $SRC in $BUILD (log: $LOGS/build.log) ..."
    local t0=$SECONDS
    if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
        cmake --build "$BUILD" -j"$JOBS"; } >"$LOGS/build.log" 2>&1; then
        tail -n 30 "$LOGS/build.log" >&2
        die "the unmutated copy does not build (see $LOGS/build.log)"
    fi
    echo "built in $((SECONDS - t0)) s"
}

# Names of the failed tests in a ctest log, comma-separated.
failed_tests() {
    sed -n '/The following tests FAILED:/,$ s/^[[:space:]]*[0-9][0-9]* - \([^[:space:]]*\) (.*/\1/p' \
        "$1" | paste -sd, -
}

# run_suite LABEL LOG LIMIT: ctest -L LABEL; sets SUITE_RC (0 pass, 124 timeout, else failed) and
# SUITE_FAILED.
SUITE_RC=0
SUITE_FAILED=""
run_suite() {
    local label="$1" log="$2" limit="$3"
    SUITE_FAILED=""
    echo "==== ctest -L $label ($(date '+%F %T'))" >>"$log"
    limited "$limit" "$log" "$BUILD" ctest -L "$label" $STOP_FLAG --output-on-failure \
        -j "$CTEST_JOBS"
    SUITE_RC=$?
    if [ $SUITE_RC -ne 0 ]; then
        SUITE_FAILED="$(failed_tests "$log")"
        [ -n "$SUITE_FAILED" ] || SUITE_FAILED="ctest -L $label exit $SUITE_RC"
    fi
}

SUITES=(unit)
[ "$UNIT_ONLY" -eq 1 ] || SUITES+=(blackbox portability)

# run_suites LOG DEADLINE: runs SUITES in order, stopping at the first failure. Sets RESULT
# (PASS, FAIL, TIMEOUT) and KILLER.
RESULT=""
KILLER=""
run_suites() {
    local log="$1" deadline="$2" s left
    RESULT=PASS
    KILLER=""
    for s in "${SUITES[@]}"; do
        left=$((deadline - SECONDS))
        if [ $left -le 0 ]; then RESULT=TIMEOUT; KILLER="timeout before -L $s"; return; fi
        run_suite "$s" "$log" "$left"
        if [ $SUITE_RC -eq 124 ] || [ $SUITE_RC -eq 137 ]; then
            RESULT=TIMEOUT
            KILLER="timeout in -L $s${SUITE_FAILED:+ ($SUITE_FAILED)}"
            return
        fi
        if [ $SUITE_RC -ne 0 ]; then RESULT=FAIL; KILLER="$SUITE_FAILED"; return; fi
    done
}

line() { printf '%-30s %-12s %6s  %s\n' "$@" | tee -a "$RESULTS"; }

# ---- modes ----

sync_tree
configure_and_build
RESULTS="$WORK/results.txt"
: >"$RESULTS"

if [ "$MODE" = check ]; then
    echo "checking ${#SELECTED[@]} mutation(s): apply, build the affected target, restore" |
        tee -a "$RESULTS"
    n_ok=0
    n_bad=0
    BAD=()
    for i in "${SELECTED[@]}"; do
        t0=$SECONDS
        id="${IDS[$i]}"
        log="$LOGS/$id.check.log"
        apply "$i"
        if [ "$APPLY" != APPLIED ]; then
            status="${APPLY/NOT-APPLIED/NOT APPLIED}"
            [ "$APPLY" != SED-ERROR ] || status="SED-ERROR: $(head -n 1 "$WORK/sed.err")"
            line "$id" "$status" "$((SECONDS - t0))s" "${PATHS[$i]}"
            n_bad=$((n_bad + 1))
            BAD+=("$id")
            continue
        fi
        tgt="$(target_of "${PATHS[$i]}")"
        : >"$log"
        if limited "$TIMEOUT" "$log" "$WORK" cmake --build "$BUILD" -j"$JOBS" \
            ${tgt:+--target "$tgt"}; then
            note=""
            if [ -n "$(sed -n '/warning:/{p;q}' "$log")" ]; then note=" (warnings: see $log)"; fi
            line "$id" APPLIES "$((SECONDS - t0))s" "${tgt:-all}$note"
            n_ok=$((n_ok + 1))
        else
            line "$id" BUILD-FAIL "$((SECONDS - t0))s" "${tgt:-all}: see $log"
            n_bad=$((n_bad + 1))
            BAD+=("$id")
        fi
        restore
    done
    # leave the build matching the restored sources
    cmake --build "$BUILD" -j"$JOBS" >>"$LOGS/build.log" 2>&1 ||
        echo "warning: the rebuild of the restored copy failed (see $LOGS/build.log)"
    {
        echo
        echo "check: $n_ok of ${#SELECTED[@]} mutation(s) apply and build; $n_bad do not${BAD[0]+:}"
        for b in "${BAD[@]+"${BAD[@]}"}"; do echo "  $b"; done
    } | tee -a "$RESULTS"
    [ "$n_bad" -eq 0 ]
    exit $?
fi

if [ "$BASELINE" -eq 1 ]; then
    echo "baseline: the suites (${SUITES[*]}) on the unmutated copy ..."
    t0=$SECONDS
    : >"$LOGS/baseline.log"
    run_suites "$LOGS/baseline.log" $((SECONDS + TIMEOUT * 2))
    if [ "$RESULT" != PASS ]; then
        die "the unmutated copy fails its tests ($KILLER; see $LOGS/baseline.log): fix that first"
    fi
    echo "baseline passes ($((SECONDS - t0)) s)"
fi

echo "running ${#SELECTED[@]} mutant(s): suites ${SUITES[*]}, timeout ${TIMEOUT} s each" |
    tee -a "$RESULTS"
line ID STATUS TIME "KILLED BY / NOTE"
n_killed=0
n_survived=0
n_buildfail=0
n_listerr=0
SURVIVORS=()
BUILDFAILS=()
LISTERRS=()
for i in "${SELECTED[@]}"; do
    t0=$SECONDS
    id="${IDS[$i]}"
    log="$LOGS/$id.log"
    {
        echo "mutant $id: ${DESCS[$i]}"
        echo "file ${PATHS[$i]}; sed ${EXPRS[$i]}"
    } >"$log"
    apply "$i"
    if [ "$APPLY" != APPLIED ]; then
        status="${APPLY/NOT-APPLIED/NOT APPLIED}"
        line "$id" "$status" "$((SECONDS - t0))s" "error of the list: ${PATHS[$i]}"
        n_listerr=$((n_listerr + 1))
        LISTERRS+=("$i")
        continue
    fi
    deadline=$((SECONDS + TIMEOUT))
    echo "==== build" >>"$log"
    limited "$TIMEOUT" "$log" "$WORK" cmake --build "$BUILD" -j"$JOBS"
    brc=$?
    if [ $brc -ne 0 ]; then
        [ $brc -eq 124 ] && note="build timed out" || note="build failed"
        line "$id" BUILD-FAIL "$((SECONDS - t0))s" "$note (see $log)"
        n_buildfail=$((n_buildfail + 1))
        BUILDFAILS+=("$i")
        restore
        continue
    fi
    run_suites "$log" "$deadline"
    case "$RESULT" in
    PASS)
        line "$id" SURVIVED "$((SECONDS - t0))s" "-"
        n_survived=$((n_survived + 1))
        SURVIVORS+=("$i")
        ;;
    *)
        line "$id" KILLED "$((SECONDS - t0))s" "$KILLER"
        n_killed=$((n_killed + 1))
        ;;
    esac
    restore
done

{
    echo
    echo "killed $n_killed, survived $n_survived, build failures $n_buildfail (not scored), list errors $n_listerr"
    scored=$((n_killed + n_survived))
    if [ $scored -gt 0 ]; then
        pm=$(((n_killed * 1000 + scored / 2) / scored))
        echo "score: killed / (killed + survived) = $n_killed / $scored = $((pm / 10)).$((pm % 10)) %"
    else
        echo "score: n/a (no mutant was scored)"
    fi
    if [ ${#SURVIVORS[@]} -gt 0 ]; then
        echo "survivors:"
        for i in "${SURVIVORS[@]}"; do printf '  %-28s %s\n' "${IDS[$i]}" "${DESCS[$i]}"; done
    fi
    if [ ${#BUILDFAILS[@]} -gt 0 ]; then
        echo "build failures:"
        for i in "${BUILDFAILS[@]}"; do printf '  %-28s %s\n' "${IDS[$i]}" "${DESCS[$i]}"; done
    fi
    if [ ${#LISTERRS[@]} -gt 0 ]; then
        echo "not applied (fix mutations.txt):"
        for i in "${LISTERRS[@]}"; do printf '  %-28s %s\n' "${IDS[$i]}" "${PATHS[$i]}"; done
    fi
    echo "logs: $LOGS; this summary: $RESULTS"
} | tee -a "$RESULTS"
exit 0
