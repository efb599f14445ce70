#!/usr/bin/env bash
# Checks the packaging files in contrib/ as far as a machine without a
# container engine can:
#   swim.service   `systemd-analyze verify` (skipped without systemd-analyze)
#   Containerfile  every path it copies from the repository or installs
#                  with `cargo install --path` exists, and every workspace
#                  member is copied (Cargo loads them all)
# and, with --install DIR (slow: a release build),
#   `cargo install --path swim-cli --locked --root DIR` works, and the
#   swim it installs accepts contrib/agent.toml, its commented-out
#   settings included.
# Usage: contrib/check.sh [--install DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

install_dir=""
case "${1:-}" in
    "") ;;
    --install) install_dir="${2:?--install needs a directory}" ;;
    -h | --help) sed -n '2,12p' "$0" | cut -c3-; exit 0 ;;
    *) echo "unknown argument: $1 (usage: contrib/check.sh [--install DIR])" >&2; exit 2 ;;
esac

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== contrib/swim.service"
if command -v systemd-analyze >/dev/null; then
    # verify insists that ExecStart's program exists: where swim is not
    # installed, a copy of the unit runs a program that does.
    unit="$tmp/swim.service"
    if [ -x /usr/local/bin/swim ]; then
        cp contrib/swim.service "$unit"
    else
        sed "s|^ExecStart=/usr/local/bin/swim |ExecStart=$(command -v true) |" contrib/swim.service >"$unit"
    fi
    # It only warns of a line it ignores (an unknown or malformed
    # setting): any output fails the check.
    if output=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$output" ]; then
        echo "ok"
    else
        echo "${output//$unit/contrib/swim.service}" >&2
        fail "systemd-analyze verify contrib/swim.service"
    fi
else
    echo "skipped: no systemd-analyze here"
fi

echo "== contrib/Containerfile"
# Instructions on one line each (continuations joined), comments dropped.
instructions=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' contrib/Containerfile | grep -Ev '^[[:space:]]*(#|$)')
copied=()
while read -r instruction rest; do
    case "$instruction" in
    COPY)
        read -ra args <<<"$rest"
        # From another stage: not a path in the repository.
        [[ "${args[0]}" == --from=* ]] && continue
        sources=()
        for a in "${args[@]}"; do [[ "$a" == --* ]] || sources+=("$a"); done
        unset 'sources[-1]' # the destination
        for s in "${sources[@]}"; do
            if [ -e "$s" ]; then copied+=("$s"); else fail "Containerfile copies $s, which is not in the repository"; fi
        done
        ;;
    RUN)
        for p in $(grep -oE -- '--path +[^ ]+' <<<"$rest" | awk '{print $2}'); do
            [ -e "$p" ] || fail "Containerfile installs --path $p, which is not in the repository"
            [[ " ${copied[*]} " == *" $p "* ]] || fail "Containerfile installs --path $p before copying it"
        done
        ;;
    esac
done <<<"$instructions"
members=$(sed -n 's/^members *= *\[\(.*\)\]/\1/p' Cargo.toml | tr -d '" ' | tr ',' ' ')
[ -n "$members" ] || fail "no workspace members found in Cargo.toml (members = [...] on one line)"
for m in $members Cargo.toml Cargo.lock; do
    [[ " ${copied[*]} " == *" $m "* ]] || fail "Containerfile does not copy $m (Cargo needs every workspace member)"
done
[ "$failures" -eq 0 ] && echo "ok: copies ${copied[*]}"

# Whether `swim` accepts config file $1: settings it refuses stop it at
# once with nothing on stdout; accepted, it prints a JSON line (started,
# or a later error such as a join that failed) or keeps running.
accepts_config() {
    local swim=$1 file=$2 out="$tmp/out" err="$tmp/err" pid i
    "$swim" agent --config-file "$file" --json --name check --bind 127.0.0.1:0 --api 127.0.0.1:0 \
        --snapshot "$tmp/snapshot" >"$out" 2>"$err" </dev/null &
    pid=$!
    for i in $(seq 100); do
        { [ -s "$out" ] || ! kill -0 "$pid" 2>/dev/null; } && break
        sleep 0.1
    done
    local accepted=0
    if [ -s "$out" ] || kill -0 "$pid" 2>/dev/null; then accepted=1; fi
    # SIGTERM: it leaves; SIGKILL should that take long.
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ "$accepted" -eq 1 ] || { cat "$err" >&2; return 1; }
}

if [ -n "$install_dir" ]; then
    echo "== cargo install --path swim-cli --locked --root $install_dir"
    # --force: a rerun replaces the swim installed by the last.
    cargo install --path swim-cli --locked --force --root "$install_dir"
    swim="$install_dir/bin/swim"
    "$swim" --version

    echo "== contrib/agent.toml, read by the installed swim"
    if accepts_config "$swim" contrib/agent.toml; then echo "ok: as it is"; else fail "swim refuses contrib/agent.toml"; fi
    # Every optional setting too: `# key = value` lines uncommented.
    sed -E 's/^# ([a-z][a-z-]*) = /\1 = /' contrib/agent.toml >"$tmp/every-key.toml"
    if accepts_config "$swim" "$tmp/every-key.toml"; then
        echo "ok: with every setting uncommented"
    else
        fail "swim refuses contrib/agent.toml with its commented-out settings uncommented"
    fi
else
    echo "== cargo install: not checked (slow; give --install DIR)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "contrib: all checks passed"
