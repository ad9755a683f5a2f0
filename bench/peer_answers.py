"""The answers of bench/peers.py's sides (Tessera, Scala Spark, PySpark, polars, the plain-Rust
loop), read from what each prints or writes, and their check against each other.

A side's answers are a dict from what was computed ("distinct words", "rank sum", "every rank",
...) to its value: an int, a float, a list of floats or a dict of floats. `check` compares, for
each answer, every side that gives it with the first side that does, and raises `AnswersDiffer`
naming the workload, the sides and the values when any two disagree. Floats agree within a
relative 1e-6: the sides sum in different orders, and Tessera and Scala print 9 decimals.
"""
import math
import re

REL_TOL = 1e-6
# Values near zero: Tessera's and Scala's 9 printed decimals are exact to 5e-10.
ABS_TOL = 1e-8

# Where logistic regression starts in the Tessera notebook, the plain-Rust loop and lr.scala.
LR_DIMENSIONS = 10
LR_START = [i / LR_DIMENSIONS - 0.5 for i in range(LR_DIMENSIONS)]


class AnswersDiffer(RuntimeError):
    """Two sides of a workload computed different answers on the same input."""


# What each side prints.

def tessera_word_count(stdout):
    return {"distinct words": int(_field(stdout, r"^distinct words: (\d+)$")),
            "total words": int(_field(stdout, r"^total words: (\d+)$"))}


def tessera_lr(stdout):
    """The final weights, and the mean loss of the last iteration (printed to 6 decimals)."""
    given = _weights(_field(stdout, r"^w: (.+)$").split())
    losses = re.findall(r"^iteration \d+: .* mean loss (\S+)$", stdout, re.MULTILINE)
    if losses:
        given["last mean loss, 6 decimals"] = round(float(losses[-1]), 6)
    return given


def tessera_pagerank(stdout):
    """Needs the notebook run with TESSERA_EXAMPLE_ALL=1, which prints every rank."""
    ranks = {int(page): float(rank)
             for page, rank in re.findall(r"^rank: (\d+) (\S+)$", stdout, re.MULTILINE)}
    ranked = int(_field(stdout, r"^ranked pages: (\d+)$"))
    if len(ranks) != ranked:
        raise RuntimeError(f"pagerank.rs printed {len(ranks)} `rank:` lines for {ranked} ranked "
                           "pages: was it run with TESSERA_EXAMPLE_ALL=1?")
    return {"ranked pages": ranked, "rank sum": math.fsum(ranks.values()), "every rank": ranks}


def scala_lr(result):
    return _weights(result["w"].split())


def spark_ranks(path):
    """The ranks a PySpark PageRank script wrote, a `PAGE RANK` line each."""
    with open(path) as f:
        return {int(page): float(rank) for page, rank in (line.split() for line in f)}


def lr_reference(points, start, iterations):
    """The weights after `iterations` steps of the notebooks' gradient descent from `start`,
    computed with numpy over `points` (an array of rows `y x1 .. xD`)."""
    import numpy as np
    y, x = points[:, 0], points[:, 1:]
    w = np.array(start, dtype=np.float64)
    # A margin so wrong that e^-m overflows gives a scale of exactly -y, as in the other sides.
    with np.errstate(over="ignore"):
        for _ in range(iterations):
            scale = (1.0 / (1.0 + np.exp(-y * (x @ w))) - 1.0) * y
            w -= scale @ x
    return w.tolist()


def load_points(path):
    import numpy as np
    values = np.fromfile(path, sep=" ")
    return values.reshape(-1, LR_DIMENSIONS + 1)


def _weights(values):
    w = [float(v) for v in values]
    return {"final w": w, "final w[0]": w[0]}


def _field(stdout, pattern):
    match = re.search(pattern, stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no line matching {pattern!r} in:\n{stdout[-3000:]}")
    return match.group(1)


# Comparing.

def check(workload, answers):
    """Compares `answers` ({side: {answer: value}}) side by side; returns a line for each answer
    saying which sides agreed on it, or raises AnswersDiffer listing every disagreement."""
    names = list(dict.fromkeys(name for given in answers.values() for name in given))
    lines, problems = [], []
    for name in names:
        sides = [side for side, given in answers.items() if name in given]
        first = sides[0]
        for side in sides[1:]:
            difference = differ(answers[first][name], answers[side][name])
            if difference:
                problems.append(f"{name}: {first} and {side} differ: {difference}")
        missing = [side for side in answers if side not in sides]
        lines.append(f"{name} = {show(answers[first][name])}, from {', '.join(sides)}"
                     + (f" (not given by {', '.join(missing)})" if missing else ""))
    if problems:
        raise AnswersDiffer(f"{workload}: the sides' answers differ on the same input:\n  "
                            + "\n  ".join(problems))
    return lines


def differ(a, b):
    """None when a and b agree, else what differs, in words."""
    if isinstance(a, dict):
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        if only_a or only_b:
            return (f"{len(only_a)} keys only in the first (e.g. {only_a[:3]}), "
                    f"{len(only_b)} only in the second (e.g. {only_b[:3]})")
        wrong = [k for k in a if not close(a[k], b[k])]
        if wrong:
            k = min(wrong)
            return f"{len(wrong)} of {len(a)} values differ, e.g. at {k!r}: {a[k]!r} vs {b[k]!r}"
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{len(a)} values vs {len(b)}"
        wrong = [i for i, (x, y) in enumerate(zip(a, b)) if not close(x, y)]
        if wrong:
            return f"{a} vs {b} (at index {', '.join(map(str, wrong))})"
        return None
    return None if close(a, b) else f"{a!r} vs {b!r}"


def close(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def show(value):
    if isinstance(value, dict):
        return f"({len(value)} values)"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)
