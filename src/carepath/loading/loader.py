"""``load()`` / ``loads()`` / ``check()``: YAML → schema → references → semantics (SPEC §5).

Each stage reports into one :class:`~carepath.loading.source.Reporter`, so every finding is reported at
once; ``load`` raises :class:`~carepath.errors.PlaybookError` when any is an error.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

from carepath.diagnostics import Diagnostic, path_str
from carepath.errors import PlaybookError
from carepath.loading.files import FileProblem, read_bounded
from carepath.loading.source import Reporter, Source
from carepath.loading.yaml import Limits, Positions, YamlError, load_yaml

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from carepath.compile.ir import Playbook
    from carepath.model import PlaybookSpec

__all__ = ["CheckResult", "check", "check_file", "load", "loads"]

INCLUDABLE = ("events", "fields", "calendars", "channels", "segments", "tiers", "templates")
MAX_STAGES = 500
MAX_TRANSITIONS = 5000


@dataclass
class CheckResult:
    """What validation produced: the compiled playbook (None on errors), every diagnostic, and
    the text of each file read (for the caret display)."""

    playbook: Playbook | None
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(d.severity == "error" for d in self.diagnostics)


def load(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> Playbook:
    """Load, validate and compile a playbook file; raises :class:`PlaybookError`."""
    res = check_file(path, limits=limits)
    if res.playbook is None:
        raise PlaybookError(res.diagnostics)
    return res.playbook


def loads(
    text: str,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    limits: Limits = Limits(),
) -> Playbook:
    """The same as :func:`load` for YAML text (``include:`` resolves against ``base_dir``)."""
    res = check(text, file=file, base_dir=base_dir, limits=limits)
    if res.playbook is None:
        raise PlaybookError(res.diagnostics)
    return res.playbook


def check_file(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> CheckResult:
    """Validate a playbook file without raising."""
    name = os.fspath(path)
    try:  # regular files only, the size bounded before and while reading (never read whole)
        raw = read_bounded(name, limits.max_bytes)
    except FileProblem as exc:
        return CheckResult(
            None, [Diagnostic("error", exc.code, exc.message, name.replace("\0", "\\0"), 1, 1)]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        d = Diagnostic(
            "error",
            "CP101",
            f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            name,
            1,
            1,
        )
        return CheckResult(None, [d])
    return check(text, file=name, base_dir=Path(name).parent, limits=limits)


def check(
    text: str,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    limits: Limits = Limits(),
) -> CheckResult:
    """Validate YAML text without raising: every finding, and the playbook when there is no error."""
    sources = {file: text}
    try:
        data, positions = load_yaml(text, limits)
    except YamlError as exc:
        return CheckResult(None, _yaml_diags(exc, file), sources)
    rep = Reporter(Source(file, text, positions))
    if not isinstance(data, dict):
        rep.add("CP109", "a playbook is a YAML mapping (carepath: 1, id: …, stages: …)", ())
        return CheckResult(None, rep.diagnostics, sources)
    _version_as_written(data, positions, text)
    data = _includes(data, rep, Path(base_dir) if base_dir is not None else None, limits, sources)
    spec = _validate_model(data, rep)
    if spec is None:
        return CheckResult(None, rep.diagnostics, sources)
    n_trans = sum(len(h) for s in spec.stages.values() if s for h in s.on.values())
    if len(spec.stages) > MAX_STAGES or n_trans > MAX_TRANSITIONS:
        rep.add(
            "CP108",
            f"{len(spec.stages)} stages and {n_trans} transitions; the limits are "
            f"{MAX_STAGES} and {MAX_TRANSITIONS}",
            ("stages",),
            key=True,
        )
        return CheckResult(None, rep.diagnostics, sources)
    from carepath.compile.compiler import compile_playbook
    from carepath.lint.checks import lint

    playbook = compile_playbook(spec, rep, text)
    if playbook is not None and not rep.pruned:  # the semantic checks need the whole playbook
        lint(playbook, rep)
    if rep.has_errors:
        return CheckResult(None, rep.diagnostics, sources)
    if playbook is not None:
        object.__setattr__(
            playbook, "warnings", tuple(d for d in rep.diagnostics if d.severity == "warning")
        )
    return CheckResult(playbook, rep.diagnostics, sources)


def _yaml_diags(exc: YamlError, file: str) -> list[Diagnostic]:
    return [
        Diagnostic("error", p.code, p.message, file, p.line, p.col, "", p.hint)
        for p in exc.problems
    ]


def _includes(  # noqa: C901 - every check an include path needs, each with its own located diagnostic
    data: dict[str, Any], rep: Reporter, base: Path | None, limits: Limits, sources: dict[str, str]
) -> dict[str, Any]:
    raw = data.get("include")
    if raw is None:
        return data
    items = raw if isinstance(raw, list) else [raw]
    merged = {
        k: (dict(v) if isinstance(v, dict) and k in INCLUDABLE else v) for k, v in data.items()
    }
    if len(items) > limits.max_includes:  # 130,000 includes of one 1 MiB file fit in 1 MiB
        rep.add(
            "CP107",
            f"{len(items):,} includes; the limit is {limits.max_includes}",
            ("include",),
            hint="merge shared sections into fewer files",
        )
        return merged
    seen: dict[Path, int] = {}
    for i, item in enumerate(items):
        at = ("include", i) if isinstance(raw, list) else ("include",)
        if not isinstance(item, str):
            continue  # the schema reports it
        if base is None:
            rep.add("CP107", "include needs a playbook file (loads() was given no base_dir)", at)
            continue
        if "\0" in item:
            rep.add(
                "CP107",
                f"include {item!r} contains a NUL character",
                at,
                hint="an include is a relative file name",
            )
            continue
        try:
            root = base.resolve()
            target = (root / item).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a name too long
            rep.add(
                "CP107",
                f"cannot resolve include {item!r}: {getattr(exc, 'strerror', None) or exc}",
                at,
            )
            continue
        if Path(item).is_absolute() or not target.is_relative_to(root):
            rep.add(
                "CP107",
                f"include {item!r} leaves the playbook's folder",
                at,
                hint="include files next to the playbook or in a folder below it",
            )
            continue
        if target in seen:
            rep.add(
                "CP107",
                f"include {item!r} names the same file as include[{seen[target]}]",
                at,
                hint="include each file once",
            )
            continue
        seen[target] = i
        try:  # a regular file, its size bounded before and while reading (a FIFO never blocks)
            text = read_bounded(target, limits.max_bytes).decode("utf-8-sig")
            idata, ipos = load_yaml(text, limits)
        except FileProblem as exc:
            if exc.code == "CP104":
                rep.add("CP104", f"include {item!r} is larger than {limits.max_bytes:,} bytes", at)
            else:
                rep.add("CP107", f"cannot read include {item!r}: {exc.reason}", at)
            continue
        except UnicodeDecodeError as exc:
            rep.add(
                "CP107",
                f"include {item!r} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                at,
            )
            continue
        except YamlError as exc:
            name = str(Path(rep.main.file).parent / item) if rep.main.file != "<string>" else item
            for d in _yaml_diags(exc, name):
                rep.diagnostics.append(d)
            continue
        name = str(Path(rep.main.file).parent / item) if rep.main.file != "<string>" else item
        sources[name] = text
        isrc = Source(name, text, ipos)
        if not isinstance(idata, dict):
            rep.diagnostics.append(
                Diagnostic(
                    "error", "CP109", "an included file is a YAML mapping of sections", name, 1, 1
                )
            )
            continue
        for section, entries in idata.items():
            if section not in INCLUDABLE:
                hint = _did_you_mean(str(section), INCLUDABLE)
                file, line, col = name, *ipos.key((section,))
                rep.diagnostics.append(
                    Diagnostic(
                        "error",
                        "CP201",
                        f"section {section!r} cannot be included; includable: {', '.join(INCLUDABLE)}",
                        file,
                        line,
                        col,
                        str(section),
                        hint,
                    )
                )
                continue
            if not isinstance(entries, dict):
                continue
            target_map = merged.setdefault(section, {})
            if not isinstance(target_map, dict):
                continue
            for name_, value in entries.items():
                if name_ in target_map:
                    file, line, col = name, *ipos.key((section, name_))
                    rep.diagnostics.append(
                        Diagnostic(
                            "error",
                            "CP107",
                            f"{section}.{name_} is defined both here and in {rep.source_of((section, name_)).file}",
                            file,
                            line,
                            col,
                            f"{section}.{name_}",
                        )
                    )
                    continue
                target_map[name_] = value
                rep.origins[(section, name_)] = isrc
    return merged


def _did_you_mean(word: str, options: Any) -> str | None:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _validate_model(data: dict[str, Any], rep: Reporter) -> PlaybookSpec | None:
    from pydantic import ValidationError

    from carepath.model import PlaybookSpec

    try:
        return PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        _report_validation(exc, data, rep)
        first = exc
    # Report every finding at once (SPEC §5): drop what the schema rejected and check the rest.
    # Entries removed whole are "tainted", so references to them are not reported as unknown.
    work = copy.deepcopy(data)
    errors = first.errors(include_url=False)
    for _ in range(8):
        found = [(_clean_loc(work, err["loc"])[0], str(err["type"]) == "missing") for err in errors]
        # later list items first: removing goals[0] must not make goals[1] name another goal
        for path, missing in sorted(
            found, key=lambda f: [(isinstance(s, int), s) for s in f[0]], reverse=True
        ):
            if not _prune(work, path, missing, rep):
                return None
        try:
            spec = PlaybookSpec.model_validate(work)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            continue
        rep.pruned = True
        return spec
    return None


_SECTIONS = (
    "events",
    "fields",
    "calendars",
    "channels",
    "segments",
    "tiers",
    "templates",
    "stages",
    "slas",
)


def _prune(data: Any, path: tuple[str | int, ...], missing: bool, rep: Reporter) -> bool:
    """Remove the node at ``path`` (its parent's entry when a key is missing); ``False`` when the
    playbook cannot be checked further (a required top-level key is wrong)."""
    target = path[:-1] if missing else path
    if len(target) <= 1:
        if target in (("id",), ("version",)):
            parent_key = target[0]
            data[parent_key] = "invalid" if parent_key == "id" else "0"
            return True
        if target and target[0] not in ("carepath", "start", "stages") and isinstance(data, dict):
            data.pop(target[0], None)
            return True
        return False
    parent = data
    for step in target[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return True  # already gone
    last = target[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        rep.remove(target)
        parent.pop(last)
    if len(target) == 2 and target[0] in _SECTIONS:
        rep.tainted.add((str(target[0]), str(target[1])))
    return True


_PII_HINT = (
    "`pii: true` marks personal data on a field (`fields`) or a declared event field (`events`)"
)


def _version_as_written(data: dict[str, Any], positions: Positions, text: str) -> None:
    """An unquoted decimal ``version`` keeps its text (``2026.10``, which YAML reads as the number
    2026.1): a version is a name, and a float's shortest form would silently change it."""
    path = ("version",)
    if not isinstance(data.get("version"), float) or positions.styles.get(path) != "":
        return
    (line, col), end = positions.values[path], positions.ends.get(path)
    if end is None or end[0] != line:
        return
    written = text.splitlines()[line - 1][col - 1 : end[1] - 1].strip()
    if written:
        data["version"] = written


def _report_validation(exc: ValidationError, data: Any, rep: Reporter) -> None:
    from carepath.model import PlaybookSpec

    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors(include_url=False):
        etype = str(err["type"])
        ctx = err.get("ctx") or {}
        path, exists = _clean_loc(data, (*err["loc"], *((ctx["key"],) if "key" in ctx else ())))
        hint = ctx.get("hint") or None
        if etype == "extra_forbidden":
            allowed = _model_keys(PlaybookSpec, path[:-1])
            key = str(path[-1])
            sect = path_str(path[:-1]) or "the playbook"
            rep.add(
                "CP201",
                f"unknown key {_short(key)} in {sect}",
                path,
                key=True,
                hint=_did_you_mean(key, allowed)
                or (_PII_HINT if key == "pii" else None)
                or (f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None),
            )
            continue
        if etype == "missing":
            parent = path[:-1]
            ident = ("missing", path)
            if ident in seen:
                continue
            seen.add(ident)
            rep.add("CP202", f"missing key {path[-1]!r}", parent)
            continue
        code = etype if etype.startswith("CP") else "CP203"
        if path == ("carepath",) and code == "CP203":
            code = "CP206"
            msg = f"unsupported format version {_get(data, path)!r}; this carepath reads format 1"
            hint = "write `carepath: 1`"
        else:
            msg = str(err["msg"])
            if code == "CP203" and exists and not etype.startswith("CP"):
                msg = f"{msg}, got {_short(_get(data, path))}"
        ident = (code, path)
        if ident in seen:
            continue
        seen.add(ident)
        rep.add(code, msg, path, hint=hint)


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], bool]:
    """Drop pydantic's union/normalisation steps from ``loc``: keep only steps that exist in the
    YAML data, plus a final missing or extra key."""
    out: list[str | int] = []
    cur = data
    exists = True
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if (isinstance(cur, dict) and step in cur) or (
            isinstance(cur, list) and isinstance(step, int) and 0 <= step < len(cur)
        ):
            out.append(step)
            cur = cur[step]
        elif isinstance(step, str) and last and (isinstance(cur, dict) or cur is None):
            out.append(step)  # a missing key, or an alias (`from`, `in`) of one
            exists = False
        elif isinstance(cur, dict) and isinstance(step, str) and step.rstrip("_") in cur:
            out.append(step.rstrip("_"))
            cur = cur[step.rstrip("_")]
        else:
            continue  # a union member, or index 0 of a normalised single item
    return tuple(out), exists


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    cur = data
    for p in path:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _model_keys(root: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    """The keys the model at ``path`` accepts (aliases included), for "did you mean" hints."""
    from pydantic import BaseModel

    t: Any = root
    for step in path:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            by_alias = {(f.alias or n): f for n, f in t.model_fields.items()}
            f = by_alias.get(str(step)) or t.model_fields.get(str(step))
            if f is None:
                return []
            t = f.annotation
        elif get_origin(t) in (list, tuple):
            t = get_args(t)[0]
        elif get_origin(t) is dict:
            t = get_args(t)[1]
        else:
            return []
    t = _unwrap(t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [(f.alias or n) for n, f in t.model_fields.items()]
    return []


def _unwrap(t: Any) -> Any:
    from typing import Annotated, Union

    from pydantic import BaseModel

    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
            continue
        if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
            args = [a for a in get_args(t) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            lists = [a for a in args if get_origin(a) in (list, dict)]
            t = models[0] if models else (lists[0] if lists else args[0])
            continue
        if isinstance(origin, type) and issubclass(origin, list) and t is not list:
            return t
        return t
