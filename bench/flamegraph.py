#!/usr/bin/env python3
"""Draws a flame graph (Brendan Gregg's layout: one box per function on a stack, as wide as the
share of samples it was on the stack for, callers below callees) from `perf script` output, as
a standalone SVG whose boxes name the function and its share when hovered.

    perf record -F 999 -g -p PID -o perf.data -- sleep 10
    perf script -i perf.data | python3 bench/flamegraph.py --title "word count" > wc.svg

Only the Python standard library is needed. `--folded FILE` also writes the collapsed stacks
(`frame;frame;frame COUNT` lines), for other tools and a text search of the shares;
`--min-share` drops boxes narrower than that share of all samples, which keeps a checked-in
graph small.
"""

import argparse
import hashlib
import html
import re
import sys
from collections import Counter

# `  7f12ab34 std::collections::hash::map::HashMap::entry+0x1a (/path/lib.so)`
FRAME = re.compile(r"^\s*[0-9a-f]+\s+(?P<symbol>.+?)(?:\+0x[0-9a-f]+)?\s+\((?P<dso>[^)]*)\)\s*$")


def collapse(lines):
    """Counts each distinct stack, root first, in `perf script` output; a stack's root is the
    thread's command name, so that threads of different kinds stay apart."""
    stacks = Counter()
    command, frames = None, []

    def finish():
        if command is not None and frames:
            stacks[";".join([command, *reversed(frames)])] += 1

    for line in lines:
        if not line.strip():
            finish()
            command, frames = None, []
        elif command is None:
            # The sample's header: `comm pid/tid time: period event:`.
            command = line.split()[0]
        else:
            match = FRAME.match(line)
            if match:
                symbol = match.group("symbol")
                if symbol == "[unknown]":
                    dso = match.group("dso").rsplit("/", 1)[-1]
                    symbol = dso if dso.startswith("[") else f"[{dso}]"
                frames.append(simplify(symbol))
    finish()
    return stacks


# Generic arguments: `<...>` right after a name (`Vec<T>`, `HashMap<K,V>::insert`), or a
# turbofish (`spawn::<F,T>`).
GENERIC_ARGUMENTS = re.compile(r"(?<=[\w\]])<[^<>]*>|::<[^<>]*>")
# A qualified path: `<Type as Trait>::method`, or `<Type>::method`.
QUALIFIED = re.compile(r"<([^<>]*?)(?: as [^<>]*)?>")


def simplify(symbol):
    """A Rust symbol without its generic arguments and hash, `<Type as Trait>::f` as
    `Type::f`, so that one function is one box."""
    symbol = re.sub(r"::h[0-9a-f]{16}$", "", symbol)
    previous = None
    while previous != symbol:
        previous, symbol = symbol, GENERIC_ARGUMENTS.sub("", symbol)
    previous = None
    while previous != symbol:
        previous, symbol = symbol, QUALIFIED.sub(r"\1", symbol)
    return symbol.replace(";", ":")


class Node:
    """A function on a stack, with what it called."""

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.children = {}

    def add(self, frames, count):
        self.count += count
        if frames:
            head = frames[0]
            child = self.children.get(head)
            if child is None:
                child = self.children[head] = Node(head)
            child.add(frames[1:], count)

    def depth(self, min_count):
        """Rows of boxes from this one up, counting only boxes of at least `min_count`."""
        return 1 + max((c.depth(min_count) for c in self.children.values()
                        if c.count >= min_count), default=0)


def colour(name):
    """A warm colour that is the same for a function in every graph."""
    digest = hashlib.md5(name.encode()).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 130},{40 + digest[2] % 50})"


def svg(stacks, title, min_share):
    root = Node("all")
    for stack, count in stacks.items():
        root.add(stack.split(";"), count)
    total = max(root.count, 1)
    width, row, top = 1200, 16, 40
    height = top + row * root.depth(min_share * total) + 10
    boxes = []

    def draw(node, x, level):
        share = node.count / total
        if share < min_share:
            return
        box_width = share * (width - 20)
        y = height - 10 - row * (level + 1)
        label = f"{node.name} ({node.count} samples, {100 * share:.2f}%)"
        text = node.name if box_width > 40 else ""
        fits = int(box_width / 7)
        if len(text) > fits:
            text = text[: max(fits - 2, 0)] + ".." if fits > 3 else ""
        boxes.append(
            f'<g><title>{html.escape(label)}</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{box_width:.1f}" height="{row - 1}" '
            f'fill="{colour(node.name)}" rx="2"/>'
            f'<text x="{x + 3:.1f}" y="{y + row - 4}">{html.escape(text)}</text></g>')
        child_x = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, child_x, level + 1)
            child_x += child.count / total * (width - 20)

    draw(root, 10, 0)
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        f'<rect width="100%" height="100%" fill="#fdfdf5"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
        f'{html.escape(title)} ({total} samples)</text>',
        *boxes,
        "</svg>",
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--title", default="flame graph")
    parser.add_argument("--folded", metavar="FILE", help="also write the collapsed stacks here")
    parser.add_argument("--min-share", type=float, default=0.002,
                        help="leave out boxes narrower than this share of all samples")
    args = parser.parse_args()
    stacks = collapse(sys.stdin)
    if not stacks:
        sys.exit("no samples with call stacks on standard input: record with `perf record -g` "
                 "and pipe `perf script` here")
    if args.folded:
        with open(args.folded, "w") as folded:
            for stack, count in sorted(stacks.items()):
                print(stack, count, file=folded)
    print(svg(stacks, args.title, args.min_share))


if __name__ == "__main__":
    main()
