#!/usr/bin/env bash
# tests/deploy/images.sh BUILD_DIR SOURCE_DIR
#
# Checks infrastructure/docker/Dockerfile without a container engine, on a
# Debian bookworm machine (the image's base):
#   - the stages exist (builder, runtime, one per daemon, the all-in-one
#     default last), both bases are debian:bookworm-slim, each daemon stage
#     is FROM runtime with ENTRYPOINT ["/usr/local/bin/<daemon>"] and
#     CMD ["serve"], EXPOSE 8080-8084, ldconfig runs, USER is 10001:10001
#     (created with groupadd/useradd) and no later stage goes back to root;
#   - every apt package the file names exists in bookworm (apt-cache show),
#     the builder installs every -dev package of TE_PACKAGES
#     (scripts/lib.sh) and the package of every pkg-config module the CMake
#     files ask for (which TE_PACKAGES must hold too), the runtime stage
#     installs no -dev package;
#   - the build context (the source tree filtered by .dockerignore, as
#     `docker build` would send it) builds with the builder's own script
#     (infrastructure/docker/build.sh) into a staging /usr/local holding the
#     five programs, libtodoevents.so and the JSON Schemas, and nothing for
#     developers (headers, archives); the staged programs run;
#   - the runtime stage has every shared library those binaries and the ones
#     in BUILD_DIR/bin need: each library ldd resolves is mapped to its Debian
#     package (dpkg's file lists, as dpkg -S); a library a binary links
#     directly (ELF NEEDED) must come from a package the runtime stage names
#     or from the base image, every other one from the dependency closure of
#     those packages (apt-cache depends --recurse) or the base image (the
#     Essential and Priority: required packages with their dependencies,
#     which is what debian:bookworm-slim holds).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)

for tool in python3 apt-cache dpkg dpkg-query ldd readelf pkg-config cmake ninja; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found" >&2; exit 1; }
done

# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" != bookworm ]; then
  echo "FAIL: this check needs Debian bookworm's package lists (the image's base); this is '${codename:-unknown}'" >&2
  exit 1
fi

if ! apt-cache show --no-all-versions libc6 >/dev/null 2>&1; then
  echo "FAIL: no apt package lists on this machine (run apt-get update first)" >&2
  exit 1
fi

# TE_PACKAGES, one a line, from the project's one list.
te_packages=$(bash -c '. "$1/scripts/lib.sh" && printf "%s\n" "${TE_PACKAGES[@]}"' _ "$src")

work=$(mktemp -d "${TMPDIR:-/tmp}/te-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# deploycheck.py (ok, fail, check, finish) from this script's folder.
here=$(cd "$(dirname "$0")" && pwd)
TE_PACKAGES_LIST="$te_packages" PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
  python3 - "$build" "$src" "$work" <<'PY'
import os, re, shlex, shutil, subprocess, sys

from deploycheck import check, fail, finish, ok

build, src, work = sys.argv[1:4]
dockerfile = os.path.join(src, "infrastructure/docker/Dockerfile")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# --- the Dockerfile: instructions per stage --------------------------------
def parse_dockerfile(path):
    lines, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (line.strip().startswith("#") or not line.strip()):
                continue
            if line.strip().startswith("#"):  # comment inside a continuation
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            lines.append(cur.strip())
            cur = ""
    if cur.strip():
        lines.append(cur.strip())
    args, stages = {}, []
    for line in lines:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        elif word == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            base = re.sub(r"\$\{?(\w+)\}?", lambda mm: args.get(mm.group(1), mm.group(0)), m.group(1))
            stages.append({"name": m.group(2) or str(len(stages)), "base": base, "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
    return stages


def apt_installs(stage):
    pkgs = []
    for word, rest in stage["ins"]:
        if word != "RUN":
            continue
        for seg in re.split(r"&&|;|\|\|?", rest):
            toks = shlex.split(seg)
            toks = [t for t in toks if not re.match(r"^[A-Z_]+=", t)]
            if len(toks) >= 2 and toks[0] in ("apt-get", "apt") and "install" in toks:
                after = toks[toks.index("install") + 1:]
                pkgs += [t for t in after if not t.startswith("-")]
    return pkgs


stages = parse_dockerfile(dockerfile)
by_name = {s["name"]: s for s in stages}
daemons = ["todo-api", "todo-worker", "todo-reminder", "todo-sync"]
programs = daemons + ["todoctl"]

check([s["name"] for s in stages][:2] == ["builder", "runtime"],
      "stages builder and runtime come first (found: %s)" % ", ".join(s["name"] for s in stages))
for n in ("builder", "runtime"):
    if n in by_name:
        check(by_name[n]["base"] == "debian:bookworm-slim",
              "stage %s is based on debian:bookworm-slim (%s)" % (n, by_name[n]["base"]))


def effective(stage_name, word):
    """Last value of an instruction along the FROM chain (None if never set)."""
    val, s = None, by_name.get(stage_name)
    chain = []
    while s is not None:
        chain.append(s)
        s = by_name.get(s["base"])
    for st in reversed(chain):
        for w, rest in st["ins"]:
            if w == word:
                val = rest
    return val


for d in daemons:
    s = by_name.get(d)
    if not check(s is not None, "stage %s exists (docker build --target %s)" % (d, d)):
        continue
    check(s["base"] == "runtime", "stage %s is FROM runtime" % d)
    check(effective(d, "ENTRYPOINT") == '["/usr/local/bin/%s"]' % d,
          "stage %s: ENTRYPOINT [\"/usr/local/bin/%s\"] (exec form)" % (d, d))
    check(effective(d, "CMD") == '["serve"]', "stage %s: CMD [\"serve\"]" % d)

final = stages[-1] if stages else None
if final:
    check(final["base"] == "runtime" and final["name"] not in daemons,
          "the default (last) stage '%s' is the all-in-one image FROM runtime" % final["name"])
    check(effective(final["name"], "ENTRYPOINT") is None,
          "the all-in-one image has no ENTRYPOINT (the chart runs '<daemon> serve')")

# USER: numeric, not root, the same in every stage built on runtime
runtime_stages = [s["name"] for s in stages if s["name"] != "builder"]
for n in runtime_stages:
    u = effective(n, "USER")
    check(u is not None and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", u or "") is not None
          and u.split(":")[0] == "10001",
          "stage %s runs as USER 10001:10001 (non-root, numeric for runAsNonRoot): %s" % (n, u))
rt_runs = " ".join(rest for w, rest in by_name.get("runtime", {"ins": []})["ins"] if w == "RUN")
check(re.search(r"groupadd\b[^&;]*--gid 10001 todo", rt_runs) is not None
      and re.search(r"useradd\b[^&;]*--uid 10001 --gid 10001\b[^&;]* todo\b", rt_runs) is not None,
      "runtime creates group and user 'todo' with id 10001")
check(re.search(r"\bldconfig\b", rt_runs) is not None, "runtime runs ldconfig")
expose = set()
for n in runtime_stages:
    for w, rest in by_name[n]["ins"]:
        if w == "EXPOSE":
            expose |= set(rest.split())
check({"8080", "8081", "8082", "8083", "8084"} <= expose, "EXPOSE 8080 8081 8082 8083 8084 (%s)" % " ".join(sorted(expose)))

copies = [rest for w, rest in by_name.get("runtime", {"ins": []})["ins"] if w == "COPY"]
check("--from=builder /staging/usr/local/ /usr/local/" in copies,
      "runtime copies the builder's /staging/usr/local/ to /usr/local/")
b_runs = [rest for w, rest in by_name.get("builder", {"ins": []})["ins"] if w == "RUN"]
check(any("infrastructure/docker/build.sh /src /build /staging" in r for r in b_runs),
      "builder builds with infrastructure/docker/build.sh /src /build /staging")

# --- apt packages ------------------------------------------------------------
builder_pkgs = apt_installs(by_name.get("builder", {"ins": []}))
runtime_pkgs = apt_installs(by_name.get("runtime", {"ins": []}))
check(len(builder_pkgs) > 0 and len(runtime_pkgs) > 0, "apt-get install found in builder and runtime")

avail = {}
for p in sorted(set(builder_pkgs + runtime_pkgs)):
    r = run(["apt-cache", "show", "--no-all-versions", p])
    avail[p] = r.returncode == 0 and re.search(r"^Package: ", r.stdout, re.M) is not None
    if not avail[p]:
        fail("apt package %s does not exist in bookworm (apt-cache show)" % p)
if all(avail.values()):
    ok("all %d apt packages named in the Dockerfile exist in bookworm" % len(avail))

te = [p for p in os.environ["TE_PACKAGES_LIST"].split() if p]
missing = [p for p in te if p.endswith("-dev") and p not in builder_pkgs]
check(not missing, "builder installs every -dev package of TE_PACKAGES%s"
      % (" (missing: %s)" % " ".join(missing) if missing else ""))
tools_missing = [p for p in ("build-essential", "cmake", "ninja-build", "pkg-config") if p not in builder_pkgs]
check(not tools_missing, "builder installs the build tools%s" % (" (missing: %s)" % " ".join(tools_missing) if tools_missing else ""))
dev_rt = [p for p in runtime_pkgs if p.endswith("-dev") or p in ("build-essential", "cmake", "gcc", "pkg-config")]
check(not dev_rt, "runtime installs no development package%s" % (" (%s)" % " ".join(dev_rt) if dev_rt else ""))
for p in ("ca-certificates", "tzdata"):
    check(p in runtime_pkgs, "runtime installs %s" % p)


_owners = None


def owner(path):
    """Debian package owning a file (its /lib <-> /usr/lib twin, or its target)."""
    global _owners
    if _owners is None:
        _owners = {}
        info = "/var/lib/dpkg/info"
        for fn in os.listdir(info):
            if fn.endswith(".list"):
                pkg = fn[:-5].split(":")[0]
                with open(os.path.join(info, fn), errors="replace") as f:
                    for line in f:
                        _owners.setdefault(line.rstrip("\n"), pkg)
    cands = []
    for c in (path, os.path.realpath(path)):
        cands.append(c)
        for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/")):
            if c.startswith(a):
                cands.append(b + c[len(a):])
    for c in cands:
        if c in _owners:
            return _owners[c]
    return None


# pkg-config modules of the image's build (tests and benchmarks are off)
modules = set()
for root in ("", "libtodoevents", "daemons"):
    base = os.path.join(src, root)
    for dirpath, dirnames, filenames in os.walk(base):
        if root == "":
            dirnames[:] = []
        if "CMakeLists.txt" in filenames:
            text = open(os.path.join(dirpath, "CMakeLists.txt")).read()
            for m in re.finditer(r"pkg_check_modules\(\s*\w+\s+([^)]*)\)", text):
                modules |= {t for t in m.group(1).split() if t not in ("REQUIRED", "QUIET", "IMPORTED_TARGET", "GLOBAL", "NO_CMAKE_PATH", "NO_CMAKE_ENVIRONMENT_PATH")}
for mod in sorted(modules):
    name = re.split(r"[<>=]", mod)[0]
    r = run(["pkg-config", "--variable=pcfiledir", name])
    pc = os.path.join(r.stdout.strip(), name + ".pc") if r.returncode == 0 else None
    pkg = owner(pc) if pc and os.path.exists(pc) else None
    if pkg is None:
        fail("pkg-config module %s: no Debian package found on this machine" % name)
    else:
        check(pkg in builder_pkgs, "pkg-config module %s comes from %s, which the builder installs" % (name, pkg))
        check(pkg in te, "scripts/lib.sh TE_PACKAGES has %s (pkg-config module %s), so a fresh machine builds it too" % (pkg, name))

# --- the build context and the builder's build ------------------------------
def ignore_patterns():
    pats = []
    p = os.path.join(src, ".dockerignore")
    if not os.path.exists(p):
        return pats
    for line in open(p):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        line = line[1:].strip() if neg else line
        line = os.path.normpath(line.lstrip("/")).lstrip("/")
        rx, i = "", 0
        while i < len(line):
            if line.startswith("**/", i):
                rx += "(?:.*/)?"; i += 3
            elif line.startswith("**", i):
                rx += ".*"; i += 2
            elif line[i] == "*":
                rx += "[^/]*"; i += 1
            elif line[i] == "?":
                rx += "[^/]"; i += 1
            else:
                rx += re.escape(line[i]); i += 1
        pats.append((neg, re.compile(rx + "$"), line))
    return pats


pats = ignore_patterns()


def excluded(rel):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    res = False
    for neg, rx, _ in pats:
        if any(rx.match(p) for p in prefixes):
            res = not neg
    return res


ctx = os.path.join(work, "context")
n_files = 0
for dirpath, dirnames, filenames in os.walk(src):
    rel_dir = os.path.relpath(dirpath, src)
    rel_dir = "" if rel_dir == "." else rel_dir
    keep = []
    for d in dirnames:
        rel = os.path.join(rel_dir, d) if rel_dir else d
        if excluded(rel) and not any(neg and raw.startswith(rel + "/") for neg, _, raw in pats):
            continue
        keep.append(d)
    dirnames[:] = keep
    for fn in filenames:
        rel = os.path.join(rel_dir, fn) if rel_dir else fn
        if excluded(rel):
            continue
        dst = os.path.join(ctx, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), dst, follow_symlinks=False)
        n_files += 1
for must in ("CMakeLists.txt", "infrastructure/docker/build.sh", "libtodoevents/include/todoevents/version.h"):
    check(os.path.exists(os.path.join(ctx, must)), "the build context (after .dockerignore) has %s" % must)
for mustnot in (".git", "build", ".run", ".cache"):
    if os.path.exists(os.path.join(src, mustnot)):
        check(not os.path.exists(os.path.join(ctx, mustnot)), ".dockerignore keeps %s out of the build context" % mustnot)
ok("build context: %d files" % n_files)

staging = os.path.join(work, "staging")
r = run(["sh", os.path.join(ctx, "infrastructure/docker/build.sh"), ctx, os.path.join(work, "build"), staging])
if not check(r.returncode == 0, "the builder's build (build.sh) succeeds on the build context"):
    print(r.stdout[-4000:], r.stderr[-4000:])
    finish("images")
prefix = os.path.join(staging, "usr/local")
for p in programs:
    check(os.access(os.path.join(prefix, "bin", p), os.X_OK), "staged /usr/local/bin/%s" % p)
check(os.path.exists(os.path.join(prefix, "lib/libtodoevents.so.0")), "staged /usr/local/lib/libtodoevents.so.0 (todoctl)")
want = sorted(f for f in os.listdir(os.path.join(src, "libtodoevents/schemas")) if f.endswith(".json"))
sdir = os.path.join(prefix, "share/todoevents/schemas")
have = sorted(os.listdir(sdir)) if os.path.isdir(sdir) else []
check(want and want == have, "staged /usr/local/share/todoevents/schemas has the %d JSON Schemas" % len(want))
dev = [os.path.relpath(os.path.join(dp, f), prefix) for dp, _, fs in os.walk(prefix) for f in fs
       if f.endswith((".a", ".h", ".pc", ".cmake"))]
check(not dev and not os.path.exists(os.path.join(prefix, "include")),
      "nothing for developers in the image (headers, archives, pkg-config, CMake)%s" % (": " + " ".join(dev[:5]) if dev else ""))
for p in programs:
    r = run([os.path.join(prefix, "bin", p), "version"])
    check(r.returncode == 0,
          "staged %s runs (%s)" % (p, (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "exit %d" % r.returncode))

# --- shared libraries -> packages the runtime stage installs -----------------
closure = set()
r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances"] + runtime_pkgs)
for line in r.stdout.splitlines():
    if line and not line[0].isspace():
        closure.add(line.strip().strip("<>"))
# debian:bookworm-slim is a debootstrap minbase: the Essential and
# Priority: required packages with their dependencies.
base_roots = set()
pkg = None
for line in run(["apt-cache", "dumpavail"]).stdout.splitlines():
    if line.startswith("Package: "):
        pkg = line.split()[1]
    elif line in ("Priority: required", "Essential: yes"):
        base_roots.add(pkg)
base = set()
r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances"] + sorted(base_roots))
for line in r.stdout.splitlines():
    if line and not line[0].isspace():
        base.add(line.strip().strip("<>"))
check("libc6" in base and len(base_roots) > 10,
      "the base image's packages: %d Essential/required packages and their dependencies (%d)" % (len(base_roots), len(base)))


def required(pkg):
    return pkg in base


binaries = [os.path.join(prefix, "bin", p) for p in programs]
binaries += [os.path.join(prefix, "lib", f) for f in os.listdir(os.path.join(prefix, "lib")) if ".so." in f and not os.path.islink(os.path.join(prefix, "lib", f))]
bdir = os.path.join(build, "bin")
if os.path.isdir(bdir):
    binaries += [os.path.join(bdir, f) for f in sorted(os.listdir(bdir)) if os.access(os.path.join(bdir, f), os.X_OK)]
else:
    fail("%s does not exist (build the project first)" % bdir)

lib_pkg = {}
problems = 0
for b in binaries:
    name = os.path.relpath(b, work) if b.startswith(work) else os.path.relpath(b, build)
    r = run(["ldd", b])
    if r.returncode != 0:
        fail("ldd %s: %s" % (name, r.stderr.strip()))
        problems += 1
        continue
    resolved = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (.*?) \(0x", line)
        if m:
            resolved[m.group(1)] = m.group(2)
        elif "not found" in line:
            fail("%s: %s" % (name, line.strip()))
            problems += 1
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", b]).stdout)
    for lib, path in resolved.items():
        if path.startswith((work, build, "/usr/local/")) or "libtodoevents.so" in lib:
            continue  # ours: installed by the image itself
        if path not in lib_pkg:
            lib_pkg[path] = owner(path)
        pkg = lib_pkg[path]
        if pkg is None:
            fail("%s: %s (%s) belongs to no Debian package" % (name, lib, path))
            problems += 1
        elif lib in needed and pkg not in runtime_pkgs and not required(pkg):
            fail("%s links %s directly, from %s, which the runtime stage does not install" % (name, lib, pkg))
            problems += 1
        elif pkg not in closure and not required(pkg):
            fail("%s needs %s from %s, which the runtime stage does not bring in" % (name, lib, pkg))
            problems += 1
if problems == 0:
    ok("every shared library of %d binaries comes from the runtime stage's packages (%s)"
       % (len(binaries), ", ".join(sorted({p for p in lib_pkg.values() if p in runtime_pkgs}))))

finish("images")
PY
