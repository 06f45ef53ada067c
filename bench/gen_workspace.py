"""gen_workspace.py SEED SERVICES PACKAGES EXTERNALS COMMITS: a `git fast-import` stream on
stdout for bench/changed_graph.sh: a pnpm workspace of SERVICES services and PACKAGES
packages (a seeded random DAG of `workspace:` edges), a v9 pnpm-lock.yaml of EXTERNALS
external packages (each depending on up to 2 others) with an importer per service and
package, then COMMITS commits: ~60% one package's source, ~25% one service's source,
~10% a lockfile bump of one importer's direct dependency, ~5% README only.

With a 6th argument FIXTURE (tests/fixtures/platform), commit 1 also gets the fixture's
terraform root (infra/terraform), its .gitignore and its deploy.toml `[terraform]` section,
so that testbed/fixture_bootstrap.py can bootstrap the workspace and the real binary can
plan in it (`terraform output` included). They never change afterwards."""
import os
import random
import sys

seed, n_svc, n_pkg, n_ext, n_commits = (int(a) for a in sys.argv[1:6])
fixture = sys.argv[6] if len(sys.argv) > 6 else None
rnd = random.Random(seed)
out = sys.stdout.buffer
stamp = 1_600_000_000
svcs = [f"svc-{i:03d}" for i in range(n_svc)]
pkgs = [f"pkg-{i:03d}" for i in range(n_pkg)]
# A DAG: a package depends only on lower-numbered ones.
pkg_deps = {p: sorted(rnd.sample(pkgs[:i], min(i, rnd.randint(0, 3)))) for i, p in enumerate(pkgs)}
svc_deps = {s: sorted(rnd.sample(pkgs, rnd.randint(1, 4))) for s in svcs}
exts = [f"ext-{i:04d}" for i in range(n_ext)]
ext_deps = {e: sorted(rnd.sample(exts[i + 1:], min(n_ext - i - 1, rnd.randint(0, 2)))) for i, e in enumerate(exts)}
versions = {}  # (name, version) -> its dependencies' names, every version kept in the lockfile
for e in exts:
    versions[(e, "1.0.0")] = ext_deps[e]
current = {e: "1.0.0" for e in exts}  # what every dependent of e resolves (one version each)
importers = {f"services/{s}": sorted(rnd.sample(exts, rnd.randint(2, 5))) for s in svcs}
importers.update({f"packages/{p}": sorted(rnd.sample(exts, rnd.randint(2, 5))) for p in pkgs})
imp_version = {(imp, e): "1.0.0" for imp, deps in importers.items() for e in deps}


def manifest(name, deps, ext):
    lines = [f'    "@gen/{d}": "workspace:*"' for d in deps] + [f'    "{e}": "^1.0.0"' for e in ext]
    return ('{\n  "name": "@gen/%s",\n  "version": "0.0.0",\n  "private": true,\n  "dependencies": {\n%s\n  }\n}\n'
            % (name, ",\n".join(lines))).encode()


def lockfile():
    w = ["lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n  excludeLinksFromLockfile: false\n\nimporters:\n\n  .: {}\n"]
    for imp in sorted(importers):
        kind, name = imp.split("/")
        deps = svc_deps[name] if kind == "services" else pkg_deps[name]
        w.append(f"\n  {imp}:\n    dependencies:\n")
        for d in deps:
            w.append(f"      '@gen/{d}':\n        specifier: workspace:*\n        version: link:../../packages/{d}\n")
        for e in importers[imp]:
            w.append(f"      {e}:\n        specifier: ^1.0.0\n        version: {imp_version[(imp, e)]}\n")
    w.append("\npackages:\n")
    for (e, v) in sorted(versions):
        w.append(f"\n  {e}@{v}:\n    resolution: {{integrity: sha512-{e}-{v}}}\n")
    w.append("\nsnapshots:\n")
    for (e, v), deps in sorted(versions.items()):
        if deps:
            w.append(f"\n  {e}@{v}:\n    dependencies:\n" + "".join(f"      {d}: {current[d]}\n" for d in deps))
        else:
            w.append(f"\n  {e}@{v}: {{}}\n")
    return "".join(w).encode()


def data(body):
    out.write(b"data %d\n" % len(body))
    out.write(body)
    out.write(b"\n")


def commit(n, message):
    global stamp
    stamp += 60
    out.write(b"commit refs/heads/main\nmark :%d\n" % n)
    out.write(b"committer Bench <bench@localhost> %d +0000\n" % stamp)
    data(message.encode())


def put(path, body, mode=b"100644"):
    out.write(b"M %s inline %s\n" % (mode, path.encode()))
    data(body)


def fixture_files():
    """The fixture's terraform root and .gitignore, and its deploy.toml [terraform] section."""
    for root, _, names in os.walk(os.path.join(fixture, "infra", "terraform")):
        for name in names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, fixture)
            # Never the bootstrap's untracked leftovers in a developer's fixture.
            if "/tfvars/" in rel and not rel.endswith("example.tfvars") or "/.terraform" in rel or "tfstate" in rel:
                continue
            with open(path, "rb") as f:
                put(rel, f.read(), b"100755" if os.access(path, os.X_OK) else b"100644")
    with open(os.path.join(fixture, ".gitignore"), "rb") as f:
        put(".gitignore", f.read())
    section, inside = [], False
    for line in open(os.path.join(fixture, "deploy.toml")):
        if line.startswith("["):
            inside = line.strip() == "[terraform]"
        if inside and not line.startswith("#"):
            section.append(line)
    return "".join(section).strip().encode() + b"\n"


commit(1, "generated workspace")
put("package.json", b'{\n  "name": "gen",\n  "private": true\n}\n')
put("pnpm-workspace.yaml", b'packages:\n  - "services/*"\n  - "packages/*"\n')
put("README.md", b"generated\n")
put("infra/docker/service.Dockerfile", b"FROM scratch\n")
# The runbook's rule for this workspace: every package is shared.
put("deploy.toml", b'[shared]\npackages = ["packages"]\n' + (b"\n" + fixture_files() if fixture else b""))
for s in svcs:
    put(f"services/{s}/package.json", manifest(s, svc_deps[s], importers[f"services/{s}"]))
    put(f"services/{s}/src/index.ts", b"export const v = 0;\n")
for p in pkgs:
    put(f"packages/{p}/package.json", manifest(p, pkg_deps[p], importers[f"packages/{p}"]))
    put(f"packages/{p}/src/index.ts", b"export const v = 0;\n")
put("pnpm-lock.yaml", lockfile())
for n in range(2, n_commits + 2):
    roll = rnd.random()
    if roll < 0.60:
        p = rnd.choice(pkgs)
        commit(n, f"change {p}")
        put(f"packages/{p}/src/index.ts", b"export const v = %d;\n" % n)
    elif roll < 0.85:
        s = rnd.choice(svcs)
        commit(n, f"change {s}")
        put(f"services/{s}/src/index.ts", b"export const v = %d;\n" % n)
    elif roll < 0.95:
        # `pnpm update <dep> --filter <importer>`: a new version of one direct dependency,
        # for that importer alone.
        imp = rnd.choice(sorted(importers))
        e = rnd.choice(importers[imp])
        v = f"1.0.{n}"
        versions[(e, v)] = ext_deps[e]
        imp_version[(imp, e)] = v
        commit(n, f"bump {e} to {v} in {imp}")
        put("pnpm-lock.yaml", lockfile())
    else:
        commit(n, "docs")
        put("README.md", b"generated, revision %d\n" % n)
out.write(b"done\n")
