#!/usr/bin/env python3
"""Print the top-level module dependency graph of src/ and check it against the layers.

A top-level module is src/NAME.rs or the folder src/NAME/. Module A uses module B when code in
A names `crate::B` (in a path or a `use crate::{B, ...}` list); comments and doc comments do not
count. The layers are the ones ARCHITECTURE.md describes: a module may use only modules of lower
layers. Exits 1 on a dependency cycle, on an edge that does not go down, and on a module that
no layer lists; 0 otherwise.

Usage: .ci/layers.py [SRC]   (default: src beside this script's parent folder)
"""

import re
import sys
from pathlib import Path

# Bottom up. Keep in step with ARCHITECTURE.md ("Layers").
LAYERS = [
    ["wire", "geo", "health"],
    ["zone"],
    ["config"],
    ["policy"],
    ["snapshot"],
    ["dns"],
    ["metrics", "monitor", "fleet", "notify", "explain", "simulate"],
    ["serve", "control"],
    ["secondary"],
    ["admin"],
    ["server"],
]
ROOTS = {"lib", "main"}  # the crate root and the binary: above every layer

CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
CRATE_LIST = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def strip_comments(text: str) -> str:
    """Drop // comments (doc comments included) and /* */ blocks; string literals are kept."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Good enough for this code base: `//` inside a string literal is rare and would only
        # hide a dependency on that line.
        cut = line.find("//")
        out.append(line if cut < 0 else line[:cut])
    return "\n".join(out)


def modules(src: Path) -> dict:
    mods = {}
    for p in sorted(src.iterdir()):
        if p.is_file() and p.suffix == ".rs":
            mods.setdefault(p.stem, []).append(p)
        elif p.is_dir():
            mods.setdefault(p.name, []).extend(sorted(p.rglob("*.rs")))
    return mods


def uses(files, names) -> set:
    found = set()
    for f in files:
        text = strip_comments(f.read_text())
        for m in CRATE_PATH.finditer(text):
            found.add(m.group(1))
        for m in CRATE_LIST.finditer(text):
            for item in m.group(1).split(","):
                head = item.strip().split("::")[0].strip()
                if head:
                    found.add(head)
    return {n for n in found if n in names}


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src"
    mods = modules(src)
    names = set(mods)
    graph = {m: uses(files, names) - {m} for m, files in mods.items()}
    layer_of = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    problems = []
    print(f"top-level modules of {src}, bottom layer first (module -> modules it uses):")
    for i, layer in enumerate(LAYERS):
        for m in layer:
            if m in graph:
                deps = ", ".join(sorted(graph[m])) or "-"
                print(f"  {i}  {m:<9} -> {deps}")
    for m in sorted(names - set(layer_of)):
        if m in ROOTS:
            continue
        problems.append(f"module {m} is in no layer (add it to LAYERS and ARCHITECTURE.md)")
    for m in sorted(set(layer_of) - names):
        print(f"  (layer module {m} does not exist)")
    for m, deps in sorted(graph.items()):
        if m in ROOTS or m not in layer_of:
            continue
        for d in sorted(deps):
            if d in layer_of and layer_of[d] >= layer_of[m]:
                problems.append(
                    f"{m} (layer {layer_of[m]}) uses {d} (layer {layer_of[d]}): not a lower layer"
                )
    for c in cycles(graph):
        problems.append("cycle: " + " -> ".join(c))
    edges = sum(len(d) for d in graph.values())
    print(f"{len(names)} top-level modules, {edges} dependencies")
    for p in problems:
        print("layers.py: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
