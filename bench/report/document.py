"""The report as a document: its blocks (headings, text, notices, lists, tables, figures),
drawing the figures to PNG, and writing it as one self-contained ``report.html`` (figures
inlined) and a ``report.md`` beside ``figures/*.png``, replaced as a set.

What goes into the report is ``build``'s business; this module knows nothing of results.
"""

import base64
import html
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from actbench_ulp.core.errors import ResultsError

__all__ = ["FIGURE_DIR", "Block", "Figure", "Report", "render_figures", "to_html", "to_markdown", "write"]

FIGURE_DIR = "figures"


@dataclass
class Block:
    """One piece of the report: ``kind`` is heading, text, notice, list or table."""

    kind: str
    text: str = ""
    level: int = 2
    anchor: str = ""
    items: list = field(default_factory=list)
    header: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    failing: list = field(default_factory=list)


@dataclass
class Figure:
    """A figure to render: ``draw()`` returns a matplotlib Figure; ``png`` is set once drawn."""

    slug: str
    title: str
    caption: str
    draw: Callable
    png: bytes = b""


@dataclass
class Report:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, kind: str, text: str = "", **kw) -> None:
        self.blocks.append(Block(kind, text, **kw))

    @property
    def figures(self) -> list:
        return [b for b in self.blocks if isinstance(b, Figure)]

    @property
    def notices(self) -> list[str]:
        return [b.text for b in self.blocks if isinstance(b, Block) and b.kind == "notice"]


def _png(fig) -> bytes:
    """The figure as a 128-colour PNG: a third of the RGBA file's size with no visible change
    (the report inlines over a hundred of them)."""
    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    buf.seek(0)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(
        small, format="PNG", optimize=True)
    return small.getvalue()



def render_figures(rep: Report, progress=None) -> None:
    """Draw every figure to PNG (``progress``: a tqdm-like wrapper over the figures)."""
    figures = rep.figures
    for fig in (progress(figures) if progress else figures):
        fig.png = _png(fig.draw())



# --- output -----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#444;margin-top:.3em}
table{border-collapse:collapse;font-size:.8em;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}tr.failing td{background:#fde2e2}
.notice{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em 1em}
nav ul{columns:2}code{background:#f4f4f4;padding:0 .2em}
"""


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(rep: Report) -> str:
    heads = [b for b in rep.blocks if isinstance(b, Block) and b.kind == "heading" and b.level == 2]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(rep.title)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(rep.title)}</h1>",
           "<nav><ul>" + "".join(f'<li><a href="#{b.anchor}">{html.escape(b.text)}</a></li>'
                                 for b in heads if b.anchor) + "</ul></nav>"]
    for b in rep.blocks:
        if isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure id="{b.slug}"><img src="data:image/png;base64,{data}" '
                       f'alt="{html.escape(b.title)}"><figcaption><b>{html.escape(b.title)}.</b> '
                       f"{_inline(b.caption)}</figcaption></figure>")
        elif b.kind == "heading":
            anchor = f' id="{b.anchor}"' if b.anchor else ""
            out.append(f"<h{b.level}{anchor}>{html.escape(b.text)}</h{b.level}>")
        elif b.kind == "text":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "notice":
            out.append(f'<p class="notice">{_inline(b.text)}</p>')
        elif b.kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join(
                f'<tr{" class=failing" if bad else ""}>'
                + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row, bad in zip(b.rows, b.failing, strict=True))
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rep: Report) -> str:
    from actbench_ulp.gate.summary import markdown_table

    out = [f"# {rep.title}", ""]
    for b in rep.blocks:
        if isinstance(b, Figure):
            out += [f"![{b.title}]({FIGURE_DIR}/{b.slug}.png)", "", f"*{b.title}.* {b.caption}", ""]
        elif b.kind == "heading":
            out += [f"{'#' * b.level} {b.text}", ""]
        elif b.kind == "text":
            out += [b.text, ""]
        elif b.kind == "notice":
            out += [f"> **Note:** {b.text}", ""]
        elif b.kind == "list":
            out += [*(f"- {i}" for i in b.items), ""]
        elif b.kind == "table":
            rows = [[("**" + _md_cell(c) + "**") if bad and c else _md_cell(c) for c in row]
                    for row, bad in zip(b.rows, b.failing, strict=True)]
            out += [*markdown_table([_md_cell(h) for h in b.header], rows), ""]
    return "\n".join(out)


def write(rep: Report, out_dir) -> Path:
    """Write report.html, report.md and figures/*.png into ``out_dir`` as one set: built in a
    scratch directory beside them and moved in only when complete; the previous figures are
    parked until the new ones are in, and put back if anything fails, so a failed run leaves
    the previous report whole.  Returns the HTML's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
    figures, parked = out_dir / FIGURE_DIR, out_dir / f"{scratch.name}-old-figures"
    try:
        (scratch / FIGURE_DIR).mkdir()
        for fig in rep.figures:
            (scratch / FIGURE_DIR / f"{fig.slug}.png").write_bytes(fig.png)
        (scratch / "report.html").write_text(to_html(rep), encoding="utf-8")
        (scratch / "report.md").write_text(to_markdown(rep), encoding="utf-8")
        if figures.exists():
            os.replace(figures, parked)
        try:
            os.replace(scratch / FIGURE_DIR, figures)
            for name in ("report.html", "report.md"):
                os.replace(scratch / name, out_dir / name)
        except OSError:
            if parked.exists():  # the previous set, whole again (its html/md were not replaced
                shutil.rmtree(figures, ignore_errors=True)  # unless the last rename failed)
                os.replace(parked, figures)
            raise
    except OSError as exc:
        raise ResultsError(f"cannot write the report into {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(parked, ignore_errors=True)
    return out_dir / "report.html"
