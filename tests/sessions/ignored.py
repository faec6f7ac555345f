#!/usr/bin/env python3
"""Nothing a session says is accepted and ignored.

For every accepted session of the corpus (its NAME.out starts with
"exit 0"), remove each mapping key (with its value) and each list item in
turn, and ask `scone session check --model` again. The removal must make
the session invalid or change the model scone reads; a removal that
changes neither is a construct scone accepts and ignores, unless
no-effect.txt lists it (NAME PATH REASON: a key written with its default
value, such as url: null). Listed removals that do change the model are
reported too, so the list stays true.

Run by tests/integration/test_sessions.sh (SCONE, DIR in the environment);
prints TAP-like "ok - " / "not ok - " lines.
"""
import concurrent.futures
import os
import subprocess
import sys
import tempfile

import yaml

SCONE = os.environ["SCONE"]
DIR = os.environ["DIR"]
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, 2 * (os.cpu_count() or 1)))


def lines_of(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def no_effect_list():
    listed = {}
    for line in lines_of(os.path.join(DIR, "no-effect.txt")):
        name, path, reason = (line.split(None, 2) + ["", ""])[:3]
        if not reason:
            raise SystemExit("no-effect.txt: every entry needs a reason: " + line)
        listed[(name, path)] = reason
    return listed


def check(name, text):
    """Exit status and model (stdout) of scone session check for text as case name."""
    args = lines_of(os.path.join(DIR, name + ".args"))
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C"}
    for line in lines_of(os.path.join(DIR, name + ".env")):
        k, _, v = line.partition("=")
        env[k] = v
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, name + ".yaml")
        with open(f, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        p = subprocess.run([SCONE, "session", "check", "--model"] + args + [f], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=d)
    return p.returncode, p.stdout


def span_of(text, parent, key, value):
    """The text to remove for one entry: [a, b)."""
    a = (key or value).start_mark.index
    b = value.end_mark.index
    if parent.flow_style:
        j = b
        while j < len(text) and text[j] in " \t\r\n":
            j += 1
        if j < len(text) and text[j] == ",":
            return a, j + 1
        i = a - 1
        while i >= 0 and text[i] in " \t\r\n":
            i -= 1
        if i >= 0 and text[i] == ",":
            return i, b
        return a, b
    if key is None:  # a block list item: take its "-" too
        i = a - 1
        while i >= 0 and text[i] == " ":
            i -= 1
        if i >= 0 and text[i] == "-":
            a = i
    return a, b


def entries(text, node, path, parent=None):
    """(path, line, column, a, b) for every key and list item under node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = (path + "." if path else "") + str(k.value)
            a, b = span_of(text, node, k, v)
            yield p, k.start_mark.line + 1, k.start_mark.column + 1, a, b
            yield from entries(text, v, p, node)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            p = "%s[%d]" % (path, i)
            a, b = span_of(text, node, None, v)
            yield p, v.start_mark.line + 1, v.start_mark.column + 1, a, b
            yield from entries(text, v, p, node)


def main():
    listed = no_effect_list()
    used = set()
    failed = 0
    for f in sorted(os.listdir(DIR)):
        if not f.endswith(".yaml"):
            continue
        name = f[:-5]
        out = os.path.join(DIR, name + ".out")
        if not os.path.exists(out) or lines_of(out)[:1] != ["exit 0"]:
            continue
        with open(os.path.join(DIR, f), encoding="utf-8", newline="") as fh:
            text = fh.read()
        rc, base = check(name, text)
        if rc != 0:
            print("not ok - sessions: %s: accepted in its .out but not now" % name)
            failed += 1
            continue
        root = yaml.compose(text.lstrip("\ufeff"))
        offset = len(text) - len(text.lstrip("\ufeff"))
        jobs = []
        for path, line, col, a, b in entries(text.lstrip("\ufeff"), root, ""):
            mutated = text[: a + offset] + text[b + offset:]
            try:
                yaml.compose(mutated.lstrip("\ufeff"))
            except yaml.YAMLError:
                continue  # not a session any more: nothing to learn
            jobs.append((path, line, col, POOL.submit(check, name, mutated)))
        bad, n = [], len(jobs)
        for path, line, col, job in jobs:
            rc, model = job.result()
            key = (name, path)
            if rc == 0 and model == base:
                if key in listed:
                    used.add(key)
                else:
                    bad.append("%s at %d:%d: removed, and scone reads the same session" % (path, line, col))
            elif key in listed:
                used.add(key)
                bad.append("%s is in no-effect.txt but removing it changes the session" % path)
        if bad:
            failed += 1
            print("not ok - sessions: %s: %d constructs accepted and ignored" % (name, len(bad)))
            for b in bad:
                print("#   " + b)
        else:
            print("ok - sessions: %s: each of %d keys and items, removed, changes what scone reads "
                  "(or is a listed default)" % (name, n))
    stale = sorted(set(listed) - used)
    if stale:
        print("not ok - sessions: no-effect.txt lists entries no session has: " +
              ", ".join("%s %s" % s for s in stale))
        failed += 1
    else:
        print("ok - sessions: every no-effect.txt entry is a key written with its default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
