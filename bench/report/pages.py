"""The documentation's measured pages: Markdown tables written from the result sets committed
under ``results/`` (``actbench report --pages docs/results``), each headed by what produced it
(the command, its date and commit, the machine: CPU, the vector width it was compiled for,
cores, the peers' versions and dispatch level).  No number on them is typed by hand, and
``tests/test_docs.py`` regenerates them and fails where a page and its results disagree.

A page is (name, title, the result set it reads, what it says, how its table is built); a result
set missing or unreadable is a ``ResultsError`` naming it.
"""

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from actbench_ulp.core.errors import ResultsError
from actbench_ulp.core.resultset import read_audit
from actbench_ulp.gate.compare import fmt
from actbench_ulp.report.sweeps import binade_figure, figure_lines, search_table, sweep_rows

__all__ = ["FIGURE", "PAGES", "Page", "figure_png", "page_markdown", "write_pages"]


@dataclass(frozen=True)
class Page:
    name: str  # the page's file is NAME.md
    title: str
    results: str  # the result set's directory under the results root
    about: str  # what the table shows, for a reader who has not run the command
    table: Callable[[Path], tuple[list[str], list[list[str]]]]  # (header, rows)
    meta_file: str = "audit.json"
    # the page's result sets: the directory itself, or these subdirectories of it, each with
    # its own command (one row length each, say)
    parts: tuple = ("",)
    extra: Callable[[Path], list[str]] | None = None  # more Markdown after the table


def _num(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v) if v not in (None, "") else "—"
    if not np.isfinite(f):
        return str(f)
    if abs(f) >= 1e6:
        return f"{f:.3g}"  # 4.5e+15 rather than 4503599627370495: the size is what matters
    return f"{int(f):,}" if f.is_integer() else fmt(f)


def _kernel(row) -> str:
    return row.activation + ("′" if row.direction == "derivative" else "")


def _count(v) -> str:
    try:
        return f"{int(float(v)):,}"
    except (TypeError, ValueError):
        return "—"


_VARIANTS = ("accurate", "simd", "simd_f32", "simd_f32_fast", "fast")
_IMPLS = ("ours", "numpy-seed", "scipy", "torch", "jax")


def _in_catalog_order(rows: pd.DataFrame, *extra: str) -> pd.DataFrame:
    """Rows by activation as the catalog lists them, then direction, then implementation and
    variant where the table has them, then ``extra`` columns (an audit writes its failing rows
    first)."""
    from actbench_ulp.core.catalog import CATALOG, DIRECTIONS

    orders = {"activation": list(CATALOG), "direction": list(DIRECTIONS), "impl": list(_IMPLS),
              "variant": list(_VARIANTS)}
    keys = {f"_{c}": [order.index(v) if v in order else len(order) for v in rows[c]]
            for c, order in orders.items() if c in rows}
    keys.update({f"_{c}": pd.to_numeric(rows[c], errors="coerce").fillna(0) for c in extra})
    return rows.assign(**keys).sort_values(list(keys), kind="stable").drop(columns=list(keys))


def _sweep_table(path: Path):
    rows = _in_catalog_order(sweep_rows(read_audit(path / "audit.csv")))
    header = ["kernel", "implementation", "max ULP", "worst input", "> 0.5 ULP", "> 1 ULP",
              "> 2 ULP", "special-value mismatches", "checked by mpmath", "seconds"]
    out = []
    for r in rows.itertuples():
        sweep = json.loads(r.sweep)
        undecided = (sweep.get("undecided") or {}).get("half") or 0
        over_half = _count(r.over_half_ulp) + (f" (+{undecided:,} undecided)" if undecided else "")
        impl = r.impl if r.impl != "ours" else f"ours: {r.variant}"
        out.append([_kernel(r), impl, _num(r.max_ulp), f"`{r.worst_input}`", over_half,
                    _count(r.over_1_ulp), _count(r.over_2_ulp), _count(r.special_mismatches),
                    _count(r.mpmath_checked), _num(round(float(sweep.get("seconds", np.nan)), 1))])
    return header, out


def _sampled_table(path: Path):
    rows = _in_catalog_order(sweep_rows(read_audit(path / "audit.csv")))
    rows = rows.assign(column=np.where(rows["impl"] == "ours", rows["variant"], rows["impl"]),
                       kernel=[_kernel(r) for r in rows.itertuples()])
    columns = [c for c in ("accurate", "simd", "simd_f32", "simd_f32_fast", "numpy-seed", "scipy",
                           "torch", "jax") if c in set(rows["column"])]
    columns += sorted(set(rows["column"]) - set(columns))

    def cell(r) -> str:
        text = _num(r.max_ulp)
        if int(r.special_mismatches):
            text += f" ({int(r.special_mismatches):,} sv)"
        if r.status == "wrong_dtype":
            text += " (dtype)"
        return text

    cells = {(r.kernel, r.column): cell(r) for r in rows.itertuples()}
    kernels = list(dict.fromkeys(rows["kernel"]))
    return (["kernel", *columns],
            [[k, *(cells.get((k, c), "—") for c in columns)] for k in kernels])


def _search_table(path: Path):
    table = search_table(read_audit(path / "audit.csv"), "float64")
    return (["activation", "direction", *table.columns],
            [[act, direction, *(_num(v) if pd.notna(v) else "—" for v in values)]
             for (act, direction), values in zip(table.index, table.to_numpy(), strict=True)])


def _speed_best(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path / "speed-best.csv", keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ResultsError(f"cannot read {path / 'speed-best.csv'}: {exc}") from None


_ROW_LENGTHS = ("rows-8", "rows-1024", "rows-128256")


def _rows_speed_table(path: Path):
    return _speed_rows(pd.concat([_speed_best(path / part) for part in _ROW_LENGTHS],
                                 ignore_index=True))


def _speed_table(path: Path):
    return _speed_rows(_speed_best(path))


def _or_dash(v) -> str:
    """A cell that may be missing (NaN): — for it, else ``_num``'s text."""
    return "—" if pd.isna(v) else _num(v)


def _peer_error(ulp) -> str:
    """A peer's worst audited error: inf is a special value it gets wrong (NaN, an infinity
    or the sign of a zero), which no ULP count measures; — where no audit has the peer."""
    ulp = pd.to_numeric(ulp, errors="coerce")  # read as text where the column has blanks
    return "special values wrong" if np.isinf(ulp) else _or_dash(ulp)


def _speed_rows(best: pd.DataFrame):
    best = _in_catalog_order(best, "row_length")
    header = ["activation", "direction", "row length", "our variant", "its max ULP", "over",
              "ours ns/element", "noise", "fastest peer", "peer's max ULP", "peer ns/element",
              "ours ÷ peer"]
    # result sets recorded before the peer's error was kept have no such column: "—"
    return header, [[r.activation, r.direction, _num(r.row_length), r.variant or "—",
                     _num(r.max_ulp), r.max_over or "—", _num(r.ns_per_element), _num(r.noise),
                     r.peer or "—", _peer_error(getattr(r, "peer_max_ulp", np.nan)),
                     _num(r.peer_ns_per_element), _num(r.ratio_vs_peer)]
                    for r in best.itertuples()]


def _instructions(path: Path) -> list[str]:
    """The "why" beside the speed table: instructions per element of the kernels that trail,
    from ``tools/instructions_per_element.py table`` (a CSV and its run's metadata), if
    recorded."""
    csv, meta_path = path / "instructions.csv", path / "instructions.json"
    if not csv.exists():
        return []
    try:
        counts = pd.read_csv(csv)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise ResultsError(f"cannot read {csv} or {meta_path}: {exc}") from None
    needed = {"activation", "direction", "ratio_vs_peer", "ours_per_element",
              "ours_vector_per_element", "ours_lanes", "ours_code", "ours_avx2_per_element",
              "peer", "peer_per_element", "peer_vector_per_element", "peer_code"}
    if missing := sorted(needed - set(counts.columns)):
        raise ResultsError(f"{csv} has no column {', '.join(missing)}: it was written by another "
                           "version of tools/instructions_per_element.py; run its table again")
    lines = ["", "## Why the misses: instructions per element", "",
             "For every row above where ours trails, the work each side does per element on "
             "this CPU. Ours from the code Numba generates (its vector loop's instructions over "
             "the elements one pass covers), or, for the row-wise kernels, whose passes call "
             "library code, by single-stepping one call under gdb at three sizes (the slope). "
             "torch stepped the same way, whatever code it dispatches (MKL's, Sleef's, a oneDNN "
             "JIT's); jax from the code XLA generates for the call (its object files: XLA "
             "computes on threads of its own, which stepping does not follow), a dash where "
             "XLA hands part of the call to a library. \"vector\" counts those that name a "
             "256- or 512-bit register; \"ours, AVX2\" is our code compiled for an AVX2 CPU "
             "(256-bit). A count does not weigh what an instruction costs: on an Intel core a "
             "512-bit instruction, with twice the lanes, issues on two vector ports, a 256-bit "
             "one on three. The last column names the code that does the elements, with its "
             "share of the instructions that grow with the size.", "",
             *_provenance([meta], path.name, ("",)), "",
             "| activation | direction | ours ÷ peer | ours | vector | peer | peer's | vector "
             "| ours, AVX2 | the code |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in counts.itertuples():
        ours = _or_dash(r.ours_per_element)
        if not pd.isna(r.ours_lanes):
            ours += f" ({int(r.ours_lanes) * 32}-bit)"
        code = "; ".join(f"{who}: {c}" for who, c in (("ours", r.ours_code), (r.peer, r.peer_code))
                         if not pd.isna(c))
        lines.append(f"| {r.activation} | {r.direction} | {_num(r.ratio_vs_peer)} | {ours} | "
                     f"{_or_dash(r.ours_vector_per_element)} | {r.peer} | "
                     f"{_or_dash(r.peer_per_element)} | {_or_dash(r.peer_vector_per_element)} | "
                     f"{_or_dash(r.ours_avx2_per_element)} | {code or '—'} |")
    return lines


PAGES = [
    Page("exhaustive-float32", "Every float32 input: our float32-arithmetic kernels",
         "exhaustive",
         "Each row is one kernel run at all 2³² float32 inputs, measured against the float64 "
         "oracle and settled by mpmath wherever the oracle's bound leaves a point undecided "
         "([how](../guide/exhaustive.md)). The maximum is proved over all inputs. ′ marks the "
         "derivative; the counts are inputs above 0.5, 1 and 2 ULP.",
         _sweep_table),
    Page("exhaustive-torch", "Every float32 input: torch", "exhaustive-torch",
         "torch's elementwise float32 activations at all 2³² inputs, audited exactly as ours "
         "(derivatives by autograd). Special-value mismatches count NaN, infinity and sign-of-zero "
         "differences from the exact value; the worst input shows one of them where the ULP "
         "error is 0.",
         _sweep_table),
    Page("sampled-float32", "Every implementation, every 257th float32 input", "sampled-float32",
         "Every 257th float32 bit pattern (every binade of both signs) of every elementwise "
         "activation, for each variant of ours and each peer. A cell is the max ULP, then "
         "(N sv) for N special-value mismatches and (dtype) for a result of the wrong dtype, "
         "rounded and audited; — where the implementation has no such function. Errors of "
         "millions of ULP are results flushed to zero or cancelled to it where the exact value "
         "is tiny (the worst inputs are in the result files).",
         _sampled_table),
    Page("search-float64", "float64: the worst case found by the search", "search-float64",
         "The largest error the [search](../guide/search.md) found for each elementwise "
         "activation and implementation in float64 (ours: the accurate variant): lower bounds "
         "on the true maxima, every one mpmath-exact. — where the implementation has no such "
         "function.",
         _search_table),
    Page("speed-float32", "Speed: our fastest variant within target against torch and jax",
         "speed-float32",
         "For each activation and direction in float32 at 2²⁰ elements (rows of 1000 for the "
         "row-wise ones), one thread: the fastest of our variants whose worst audited error is "
         "within the standard target (forward ≤ 1 ULP, other directions ≤ 2), its ns per "
         "element, and the faster of torch and jax timed in the same run "
         "([how](../guide/timing.md)). Below 1 in the last column ours is faster. \"over\" "
         "says whether the max ULP covers all inputs (exhaustive) or a sample; the max ULPs come "
         "from the default audit of the same commit (`actbench audit`, results/audit.csv) "
         "and the committed exhaustive sweeps, the peers' from the committed sweeps of every "
         "257th input and of torch's every input (— where none audits that function): a peer "
         "far over the target is fast partly by the accuracy it gives away.",
         _speed_table, meta_file="speed.json", extra=_instructions),
    Page("speed-rows-float32", "Speed: softmax and log_softmax by row length", "speed-rows-float32",
         "softmax and log_softmax in float32, 2²⁰ elements a call as rows of 8, 1024 and "
         "128,256 (131,072, 1,024 and 8 rows), one thread, one run per row length: our fastest "
         "variant within target and the faster of torch and jax in the same run, as on "
         "[the speed page](speed-float32.md). The max ULPs come from an audit of the same "
         "commit (`actbench audit`, results/audit.csv).",
         _rows_speed_table, meta_file="speed.json", parts=_ROW_LENGTHS),
]


def _command(argv: list, results: str) -> str:
    """The command as a reader types it: the program's name without its path, and --out
    naming the committed path under results/ rather than wherever the run wrote."""
    args = [Path(argv[0]).name, *argv[1:]] if argv else ["?"]
    for i, a in enumerate(args[:-1]):
        if a == "--out":
            args[i + 1] = f"results/{results}"
    return shlex.join(args)


def _run_line(meta: dict) -> str:
    versions = meta.get("versions") or {}
    commit = (meta.get("commit") or "no commit")[:12]
    if meta.get("dirty"):
        commit += " (uncommitted changes)"
    return (f"{meta.get('created', '?')}, commit {commit}; "
            + ", ".join(f"{k} {versions[k]}" for k in ("numba", "llvmlite", "numpy")
                        if versions.get(k)))


def _provenance(metas: list, results: str, parts: tuple) -> list[str]:
    """The commands and runs of a page's result sets, then the machine and peers of the
    first (the sets of one page are recorded on one machine)."""
    lines = []
    for meta, part in zip(metas, parts, strict=True):
        where = f"{results}/{part}".rstrip("/")
        lines += [f"- **Command:** `{_command(meta.get('argv') or [], where)}`",
                  f"- **Run:** {_run_line(meta)}"]
    return lines + _machine(metas[0], results)


def _machine(meta: dict, results: str) -> list[str]:
    cpu = meta.get("cpu") or {}
    target = meta.get("compiler_target") or {}
    peers = meta.get("peers") or {}
    machine = (f"{cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} logical cores; "
               f"kernels compiled for {target.get('cpu_name', '?')} with "
               f"{target.get('vector_bits', '?')}-bit vectors")
    peer_text = ", ".join(
        f"{name} {p.get('version', '?')}"
        + (f" (dispatching {p['cpu_capability']})" if p.get("cpu_capability") else "")
        for name, p in peers.items())
    lines = [f"- **Machine:** {machine}"]
    if peer_text:
        lines.append(f"- **Peers:** {peer_text}")
    if meta.get("threads"):
        lines.append(f"- **Threads:** {meta['threads']}")
    lines.append(f"- **Result files:** `results/{results}/`")
    return lines


# the picture at the top of the README and the docs' overview: gelu's error per binade, every
# implementation, from the sampled sweep
FIGURE = ("gelu-binades.png", "sampled-float32", "gelu", "forward")


def figure_png(results_root) -> bytes:
    """``FIGURE`` drawn from its result set, as the report draws its sweep figures."""
    from actbench_ulp.report.document import _png

    name, results, activation, direction = FIGURE
    rows = _in_catalog_order(sweep_rows(read_audit(Path(results_root) / results / "audit.csv")))
    rows = rows[(rows["activation"] == activation) & (rows["direction"] == direction)]
    if rows.empty:
        raise ResultsError(f"{Path(results_root) / results} has no {activation} {direction} sweep "
                           f"for {name}")
    budget = float(pd.to_numeric(rows["budget_max_ulp"]).max())
    return _png(binade_figure(f"{activation} {direction}, float32: max ULP error per binade of |x|",
                              figure_lines(rows), budget))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def page_markdown(page: Page, results_root) -> str:
    """The page's Markdown from its result set under ``results_root``."""
    path = Path(results_root) / page.results
    metas = []
    for part in page.parts:
        meta_path = path / part / page.meta_file
        if not meta_path.exists():
            raise ResultsError(f"{meta_path} is missing: the page {page.name} is written from it")
        try:
            metas.append(json.loads(meta_path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"cannot read {meta_path}: {exc}") from None
    header, rows = page.table(path)
    lines = [f"# {page.title}", "",
             "<!-- written by `actbench report --pages docs/results` from "
             f"results/{page.results}/; edit the results or the generator, not this file -->", "",
             page.about, "", *_provenance(metas, page.results, page.parts), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    lines += page.extra(path) if page.extra else []
    return "\n".join(lines) + "\n"


def write_pages(results_root, out_dir) -> list[Path]:
    """Every page and ``FIGURE`` into ``out_dir`` (created), each written whole or not at all."""
    from actbench_ulp.core.results import write_atomic

    texts = [(page, page_markdown(page, results_root)) for page in PAGES]  # all read first
    png = figure_png(results_root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page, text in texts:
        write_atomic(out / f"{page.name}.md", text)
        written.append(out / f"{page.name}.md")
    write_atomic(out / FIGURE[0], png)
    written.append(out / FIGURE[0])
    return written
