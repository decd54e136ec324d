#!/usr/bin/env python3
"""Checks pystrobe's speedscope output against speedscope itself.

    python3 tests/viewers/check_speedscope.py PATH_TO_PYSTROBE

Converts tests/viewers/speedscope.folded (two threads) with
`pystrobe convert -f speedscope`, then:

  content  the document holds the fixture: one profile per thread, named by
           the thread, with the fixture's stacks and weights;
  schema   it validates against the file-format-schema.json published in the
           speedscope npm package (with python3-jsonschema);
  viewer   speedscope's own page, from the same package, loads it in headless
           chromium the way `speedscope FILE` does, and shows the profiles.

The package is installed with npm into $PYSTROBE_NPM_DIR (default build/npm)
when it is not there already.  Exit status: 0 pass, 1 fail, 77 skip (a tool
is missing; the reason is printed).
"""

import base64
import html
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse

SPEEDSCOPE_VERSION = "1.25.0"
SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
SYSTEM_PYTHON = "/usr/bin/python3"
SKIP = 77

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, "speedscope.folded")


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def need_jsonschema():
    """Imports jsonschema, re-running under Debian's python3 (which has it) if needed."""
    try:
        import jsonschema  # noqa: F401
        return jsonschema
    except ImportError:
        pass
    if (os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)
            and os.access(SYSTEM_PYTHON, os.X_OK)
            and not os.environ.get("PYSTROBE_CHECK_REEXEC")):
        os.environ["PYSTROBE_CHECK_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    return None


def run(argv, timeout, **kw):
    """Runs argv in its own process group; on timeout the whole group is killed."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        raise Failure("%s timed out after %ds" % (os.path.basename(argv[0]), timeout))
    finally:
        # Helpers the program left behind (chromium's zygote, renderers) go too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return p.returncode, out, err


def tail(b, n=800):
    s = b.decode("utf-8", "replace").strip()
    return s if len(s) <= n else "..." + s[-n:]


# ---- the fixture and the document ----------------------------------------------------------

def read_fixture():
    """{thread label: {stack of frame labels (tuple): count}} from the folded fixture."""
    threads = {}
    with open(FIXTURE, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, count = line.rsplit(" ", 1)
            frames = stack.split(";")
            per = threads.setdefault(frames[0], {})
            key = tuple(frames[1:])
            per[key] = per.get(key, 0) + int(count)
    return threads


def frame_label(fr):
    label = fr["name"]
    if "file" in fr:
        label += " (" + fr["file"]
        if "line" in fr:
            label += ":%d" % fr["line"]
        label += ")"
    return label


def load_document(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise Failure("%s is not valid UTF-8: %s" % (path, e))

    def no_constant(c):
        raise ValueError("%s is not JSON" % c)
    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as e:
        raise Failure("%s is not valid JSON: %s" % (path, e))


def check_content(doc, fixture):
    if doc.get("$schema") != SCHEMA_URL:
        raise Failure("$schema is %r" % doc.get("$schema"))
    frames = doc["shared"]["frames"]
    profiles = doc["profiles"]
    names = [p.get("name") for p in profiles]
    if names != list(fixture):
        raise Failure("profiles are %r, expected one per thread: %r" % (names, list(fixture)))
    labels = [frame_label(fr) for fr in frames]
    if len(set(labels)) != len(labels):
        raise Failure("shared.frames has duplicates")
    if any(lab.startswith("thread ") for lab in labels):
        raise Failure("a thread root is among the frames")
    for prof in profiles:
        want = fixture[prof["name"]]
        where = "profile %r" % prof["name"]
        if prof.get("type") != "sampled":
            raise Failure("%s: type %r, expected sampled" % (where, prof.get("type")))
        samples, weights = prof["samples"], prof["weights"]
        if len(samples) != len(weights):
            raise Failure("%s: %d samples but %d weights" % (where, len(samples), len(weights)))
        if prof.get("startValue") != 0:
            raise Failure("%s: startValue %r" % (where, prof.get("startValue")))
        total = sum(weights)
        if not math.isclose(prof["endValue"], total, rel_tol=1e-12, abs_tol=0):
            raise Failure("%s: endValue %r but the weights add up to %r" % (where, prof["endValue"], total))
        got = {}
        for s, w in zip(samples, weights):
            if not all(isinstance(i, int) and 0 <= i < len(labels) for i in s):
                raise Failure("%s: sample %r has indices outside shared.frames (%d frames)" % (where, s, len(labels)))
            key = tuple(labels[i] for i in s)
            got[key] = got.get(key, 0) + w
        if set(got) != set(want):
            raise Failure("%s: stacks differ from the fixture:\n  extra %r\n  missing %r"
                          % (where, sorted(set(got) - set(want)), sorted(set(want) - set(got))))
        unit = prof.get("unit")
        if unit == "none":
            for key, count in want.items():
                if got[key] != count or not isinstance(got[key], int):
                    raise Failure("%s: weight %r for %s, expected %d" % (where, got[key], ";".join(key), count))
        elif unit == "seconds":
            # Some rate: every weight is count / rate for one rate.
            rate = sum(want.values()) / total
            for key, count in want.items():
                if not math.isclose(got[key] * rate, count, rel_tol=1e-9):
                    raise Failure("%s: weight %r for %s is not %d samples at %g/s"
                                  % (where, got[key], ";".join(key), count, rate))
        else:
            raise Failure("%s: unit %r, expected none or seconds" % (where, unit))


# ---- schema ------------------------------------------------------------------------------

_package = {}


def package_dir(tmp):
    """Installs the pinned speedscope package unless it is there; returns its directory."""
    if "dir" not in _package:
        try:
            _package["dir"] = install_package(tmp)
        except (Skip, Failure) as e:
            _package["dir"] = e
    if isinstance(_package["dir"], Exception):
        raise _package["dir"]
    return _package["dir"]


def install_package(tmp):
    base = os.environ.get("PYSTROBE_NPM_DIR") or os.path.join(ROOT, "build", "npm")
    base = os.path.abspath(base)
    pkg = os.path.join(base, "node_modules", "speedscope")
    try:
        with open(os.path.join(pkg, "package.json"), encoding="utf-8") as f:
            if json.load(f).get("version") == SPEEDSCOPE_VERSION:
                return pkg
    except (OSError, ValueError):
        pass
    npm = shutil.which("npm")
    if not npm:
        raise Skip("npm is not installed (needed for the speedscope %s package)" % SPEEDSCOPE_VERSION)
    os.makedirs(base, exist_ok=True)
    print("installing speedscope@%s into %s" % (SPEEDSCOPE_VERSION, base), flush=True)
    # npm's cache and logs stay in the temporary directory.
    env = dict(os.environ, npm_config_cache=os.path.join(tmp, "npm-cache"),
               npm_config_update_notifier="false")
    rc, out, err = run([npm, "install", "--no-audit", "--no-fund", "--prefix", base,
                        "speedscope@" + SPEEDSCOPE_VERSION], timeout=300, env=env)
    if rc != 0:
        raise Skip("npm install speedscope@%s failed (offline?): %s" % (SPEEDSCOPE_VERSION, tail(err)))
    with open(os.path.join(pkg, "package.json"), encoding="utf-8") as f:
        got = json.load(f).get("version")
    if got != SPEEDSCOPE_VERSION:
        raise Failure("npm installed speedscope %s, expected %s" % (got, SPEEDSCOPE_VERSION))
    return pkg


def check_schema(jsonschema, pkg, doc):
    path = os.path.join(pkg, "dist", "release", "file-format-schema.json")
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure("cannot read speedscope's schema %s: %s" % (path, e))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        raise Failure("not valid against speedscope's schema:\n" + "\n".join(
            "  at %s: %s" % ("/".join(map(str, e.absolute_path)) or "(root)", e.message)
            for e in errors[:10]))
    # The validator must be able to say no: a broken copy is rejected.
    broken = json.loads(json.dumps(doc))
    broken["profiles"][0]["samples"] = "not a list"
    del broken["shared"]
    if validator.is_valid(broken):
        raise Failure("speedscope's schema accepts a broken document: the schema check is not working")


# ---- the viewer ----------------------------------------------------------------------------

# Headless chromium blocks on alert(), which speedscope uses for "Unrecognized
# format!" and empty profiles: the hook writes the message into the page instead.
ALERT_HOOK = ("window.alert = function (m) { var d = document.createElement('div'); "
              "d.id = 'pystrobe-alert'; d.textContent = 'ALERT: ' + m; "
              "document.documentElement.appendChild(d); };\n")


def chromium_path():
    for c in (os.environ.get("PYSTROBE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def page_text(dom):
    dom = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]*>", " ", dom))).strip()


def check_viewer(pkg, profile_path, doc, fixture, tmp):
    chromium = chromium_path()
    if not chromium:
        raise Skip("chromium is not installed")
    index = os.path.join(pkg, "dist", "release", "index.html")
    if not os.path.isfile(index):
        raise Failure("speedscope's page %s is missing" % index)
    # What speedscope's bin/cli.mjs does: a script calling
    # speedscope.loadFileFromBase64(basename, base64 of the file), opened
    # through index.html#localProfilePath=SCRIPT.
    with open(profile_path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode("ascii")
    js = os.path.join(tmp, "profile.js")
    with open(js, "w", encoding="utf-8") as f:
        f.write(ALERT_HOOK)
        f.write("speedscope.loadFileFromBase64(%s, %s)\n"
                % (json.dumps(os.path.basename(profile_path)), json.dumps(b64)))
    url = "file://%s#localProfilePath=%s" % (urllib.parse.quote(index), urllib.parse.quote(js, safe="/"))
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"))
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + os.path.join(tmp, "chromium-profile"),
            "--virtual-time-budget=10000", "--dump-dom", url]
    rc, out, err = run(argv, timeout=120, env=env, cwd=tmp)
    dom = out.decode("utf-8", "replace")
    if rc != 0 or not dom.strip():
        raise Failure("chromium exited with status %d and no page: %s" % (rc, tail(err)))
    text = page_text(dom)
    m = re.search(r"ALERT: [^<]*", dom)
    if m:
        raise Failure("speedscope refused the file: %s" % html.unescape(m.group(0)))
    if "Something went wrong" in text:
        raise Failure("speedscope failed to import the file: %s" % text[:300])
    if "Drag and drop a profile file" in text:
        raise Failure("speedscope still shows its landing page: the profile did not load (%s)" % text[:300])
    if re.search(r"(?i)<script>\s*alert\(1\)", dom):
        raise Failure("a frame name became markup in speedscope's page")
    title = re.search(r"(?is)<title>(.*?)</title>", dom)
    want_title = doc.get("name", "") + " - speedscope"
    if not title or html.unescape(title.group(1)).strip() != want_title:
        raise Failure("page title %r, expected %r" % (title and html.unescape(title.group(1)), want_title))
    nprof = len(doc["profiles"])
    if "(1/%d)" % nprof not in text:
        raise Failure("speedscope does not show profile 1 of %d: %s" % (nprof, text[:300]))
    # The profile list: each thread's name with its total weight.
    for prof in doc["profiles"]:
        name = prof["name"]
        if name not in text:
            raise Failure("speedscope's page does not show profile %r: %s" % (name, text[:300]))
        if prof["unit"] == "none":
            total = sum(fixture.get(name, {}).values())
            if not re.search(re.escape(name) + r" %d\b" % total, text):
                raise Failure("speedscope does not show %r with total weight %d: %s" % (name, total, text[:400]))


# ---- main --------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        print("usage: %s PATH_TO_PYSTROBE" % sys.argv[0], file=sys.stderr)
        return 2
    jsonschema = need_jsonschema()
    pystrobe = os.path.abspath(sys.argv[1])
    if not os.access(pystrobe, os.X_OK):
        print("FAIL speedscope: %s is not an executable" % pystrobe)
        return 1
    fixture = read_fixture()
    results = []
    tmp = tempfile.mkdtemp(prefix="pystrobe-speedscope-")
    try:
        out = os.path.join(tmp, "fixture.speedscope.json")
        try:
            rc, _, se = run([pystrobe, "convert", FIXTURE, "-f", "speedscope", "-o", out], timeout=60)
            if rc != 0:
                raise Failure("pystrobe convert exited with status %d: %s" % (rc, tail(se)))
            doc = load_document(out)
        except Failure as e:
            print("FAIL speedscope: %s" % e)
            return 1

        def content():
            check_content(doc, fixture)

        def schema():
            if jsonschema is None:
                raise Skip("python3-jsonschema is not installed (apt install python3-jsonschema)")
            check_schema(jsonschema, package_dir(tmp), doc)

        def viewer():
            check_viewer(package_dir(tmp), out, doc, fixture, tmp)

        for name, check in (("content", content), ("schema", schema), ("viewer", viewer)):
            try:
                check()
                results.append((name, "ok", None))
            except Skip as e:
                results.append((name, "skip", str(e)))
            except Failure as e:
                results.append((name, "fail", str(e)))
            except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
                results.append((name, "fail", "malformed document: %s: %s" % (type(e).__name__, e)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for name, status, why in results:
        tag = {"ok": "PASS", "skip": "SKIP", "fail": "FAIL"}[status]
        print("%s speedscope/%s%s" % (tag, name, ": " + why if why else ""))
    if any(s == "fail" for _, s, _ in results):
        return 1
    skipped = ["%s: %s" % (name, why) for name, s, why in results if s == "skip"]
    if skipped:
        # The last line says why (tests/viewers/run.sh shows it).
        print("skipped " + "; ".join(skipped))
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
