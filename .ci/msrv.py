"""The MSRV check this machine can make with its one toolchain: every
package the workspace builds (its own and every locked dependency that
declares one) needs no newer Rust than the workspace's `rust-version`.
Clippy's `incompatible_msrv` lint, on in `cargo clippy`, checks our own
code's use of the standard library against the same version."""
import json, subprocess, sys

meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"]))
ours = {p["id"] for p in meta["packages"] if p["source"] is None}
def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])
msrv = {version(p["rust_version"]) for p in meta["packages"] if p["id"] in ours and p.get("rust_version")}
if len(msrv) != 1:
    sys.exit(f"the workspace's packages declare different rust-versions: {msrv}")
(msrv,) = msrv
# Only what the published crates build for their users: normal and build
# dependencies, resolved over the whole graph.
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
published = [p["id"] for p in meta["packages"] if p["id"] in ours and p.get("publish") != []]
seen, todo = set(), list(published)
while todo:
    pid = todo.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for d in nodes[pid]["deps"]:
        if any(k["kind"] in (None, "build") for k in d["dep_kinds"]):
            todo.append(d["pkg"])
too_new = []
for p in meta["packages"]:
    if p["id"] in seen and p.get("rust_version") and version(p["rust_version"]) > msrv:
        too_new.append(f'{p["name"]} {p["version"]} needs Rust {p["rust_version"]}')
print(f"rust-version {'.'.join(map(str, msrv))}: {len(seen)} packages checked")
if too_new:
    sys.exit("\n".join(too_new))
