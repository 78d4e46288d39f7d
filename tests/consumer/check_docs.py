#!/usr/bin/python3
"""check_docs.py - what README.md and include/spindle.h show a user holds.

    check_docs.py examples --root SRC --cc CC     (CTest: docs.examples)
    check_docs.py links --root SRC                (CTest: docs.links)

examples  Every C example compiles warning-free as its own translation unit
          with `CC -std=c11 -Wall -Wextra -Werror -c` against the header:
          README.md's ```c blocks and the header's @code ... @endcode blocks
          (comment stars stripped; <spindle.h> included first when the example
          does not include it).
links     Every document they point to exists: README.md's relative links
          ([text](path), and #anchors against its headings) and every *.md
          path either file names.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def log(*args):
    print("[docs]", *args, file=sys.stderr, flush=True)


def examples_of(root):
    """[(where, code)] from README.md and include/spindle.h."""
    out = []
    readme = os.path.join(root, "README.md")
    with open(readme) as f:
        lines = f.read().split("\n")
    block, start = None, 0
    for i, line in enumerate(lines, 1):
        if block is None and re.match(r"^```c\s*$", line):
            block, start = [], i + 1
        elif block is not None and line.startswith("```"):
            out.append((f"README.md:{start}", "\n".join(block) + "\n"))
            block = None
        elif block is not None:
            block.append(line)
    header = os.path.join(root, "include", "spindle.h")
    with open(header) as f:
        lines = f.read().split("\n")
    block = None
    for i, line in enumerate(lines, 1):
        text = re.sub(r"^\s*\* ?", "", line)
        if block is None and text.strip() == "@code":
            block, start = [], i + 1
        elif block is not None and text.strip() == "@endcode":
            out.append((f"include/spindle.h:{start}", "\n".join(block) + "\n"))
            block = None
        elif block is not None:
            block.append(text)
    return out


def check_examples(args):
    found = examples_of(args.root)
    if not any(w.startswith("README") for w, _ in found):
        log("no ```c example in README.md")
        return 1
    if not any(w.startswith("include") for w, _ in found):
        log("no @code example in include/spindle.h")
        return 1
    bad = 0
    with tempfile.TemporaryDirectory(prefix="spindle-examples-") as tmp:
        for n, (where, code) in enumerate(found):
            if "#include <spindle.h>" not in code:
                code = "#include <spindle.h>\n" + code
            src = os.path.join(tmp, f"example{n}.c")
            with open(src, "w") as f:
                f.write(code)
            cmd = [args.cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I",
                   os.path.join(args.root, "include"), "-c", src, "-o", src + ".o"]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                bad += 1
                log(f"{where}: does not compile cleanly:\n{code}\n{r.stdout}")
            else:
                log(f"{where}: ok ({code.count(chr(10))} lines)")
    log(f"{len(found) - bad} of {len(found)} examples compile with -Wall -Wextra -Werror")
    return 1 if bad else 0


def anchor(heading):
    """GitHub's anchor for a heading."""
    a = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return a.replace(" ", "-")


def check_links(args):
    missing, checked = [], set()
    for rel in ("README.md", "include/spindle.h"):
        with open(os.path.join(args.root, rel)) as f:
            text = f.read()
        targets = set()
        if rel.endswith(".md"):
            headings = {anchor(h) for h in re.findall(r"^#+\s+(.*)$", text, re.M)}
            for t in re.findall(r"\]\(([^)\s]+)\)", text):
                if re.match(r"^[a-z]+:", t):
                    continue
                if t.startswith("#"):
                    if t[1:] not in headings:
                        missing.append(f"{rel}: anchor {t}")
                    continue
                targets.add(t.split("#")[0])
        targets.update(re.findall(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b", text))
        for t in sorted(targets):
            checked.add(t)
            if not os.path.exists(os.path.join(args.root, t)):
                missing.append(f"{rel}: {t}")
    log(f"{len(checked)} paths checked: {' '.join(sorted(checked))}")
    if not missing:
        return 0
    for m in missing:
        log("missing:", m)
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["examples", "links"])
    ap.add_argument("--root", required=True)
    ap.add_argument("--cc", default="cc")
    args = ap.parse_args()
    return check_examples(args) if args.what == "examples" else check_links(args)


if __name__ == "__main__":
    sys.exit(main())
