"""The care report as one self-contained HTML file, rendered from Jinja2 templates with
autoescaping: inline CSS, inline SVG charts, one tiny inline script; nothing from the network, so
it works offline and in mail.

The templates ship in ``carepath/report/templates`` (``base.html.j2``, ``report.html.j2``,
``compare.html.j2``, ``macros.html.j2``, ``style.css``, ``script.js``). A team rebrands the report
by giving a folder (``carepath report … --template DIR``) holding any of them: a file there
replaces the shipped one of the same name, the rest are taken from the package. ``base.html.j2``
has the blocks ``style``, ``brand`` and ``footer`` for small changes.

The script marks each chart with marks (``class="mark"``) as drawn and writes their number as
``data-charts-drawn`` on ``<body>`` (the browser test reads it); it also unfolds the long tables
before printing. The report's JSON is embedded as ``<script type="application/json"
id="report-data">``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carepath.report.view import build_view, compare_table

if TYPE_CHECKING:
    import jinja2

__all__ = ["TEMPLATES", "TemplateError", "inline_json", "render_compare_html", "render_html"]

#: The shipped templates' folder.
TEMPLATES = Path(__file__).parent / "templates"


class TemplateError(ValueError):
    """A ``--template`` folder that cannot be used, or a template in it that does not render."""


_INLINE_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def inline_json(data: Any) -> str:
    r"""JSON safe inside an HTML ``<script>`` element: ``<``, ``>``, ``&``, U+2028 and U+2029 are
    written as ``\u`` escapes, so ``</script>`` or ``<!--<script>`` in a title or a channel name
    can neither end the element nor switch the HTML parser into its escaped state. The escapes
    only occur inside JSON strings, so ``JSON.parse`` reads the same data.

    >>> print(inline_json({"t": "<!--<script></script>&"}))
    {"t":"\u003c!--\u003cscript\u003e\u003c/script\u003e\u0026"}
    """
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(
        _INLINE_JSON_ESCAPES
    )


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment: autoescaping on, undefined names are errors, ``template_dir``'s
    files before the shipped ones."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        folder = Path(template_dir)
        if not folder.is_dir():
            raise TemplateError(f"--template {template_dir}: not a folder")
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(name: str, template_dir: str | Path | None, **ctx: Any) -> str:
    import jinja2
    from markupsafe import Markup

    from carepath.report.i18n import Words

    env = environment(template_dir)
    ctx["data"] = Markup(inline_json(ctx["data"]))  # already safe inside <script>, see inline_json
    ctx["words"] = Words(ctx["lang"])
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateError as exc:
        where = f"{exc.filename}:{exc.lineno}" if getattr(exc, "lineno", None) else name  # type: ignore[attr-defined]
        raise TemplateError(f"template {where}: {exc.message or exc}") from None


def render_html(r: dict[str, Any], lang: str = "en", template_dir: str | Path | None = None) -> str:
    """One report as a self-contained HTML page, in ``lang`` (``en`` or ``vi``)."""
    view = build_view(r, lang)
    return _render(
        "report.html.j2",
        template_dir,
        view=view,
        title=view.title,
        subtitle=view.subtitle,
        lang=lang,
        data=r,
    )


def render_compare_html(
    c: dict[str, Any], lang: str = "en", template_dir: str | Path | None = None
) -> str:
    """The what-if as one page: the differences, then each version's report."""
    from carepath.report.i18n import Words

    t = Words(lang)
    b, o = build_view(c["base"], lang), build_view(c["compare"], lang)
    pb = c["base"]["playbook"]
    return _render(
        "compare.html.j2",
        template_dir,
        base=b,
        compare=o,
        differences=compare_table(c, lang),
        title=f"{t('what_if')} — {pb.get('title') or pb['id']}",
        subtitle=f"{b.subtitle} → {o.subtitle}",
        lang=lang,
        data=c,
    )
