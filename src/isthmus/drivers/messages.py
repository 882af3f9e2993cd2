"""How load errors describe code: closest names, ``file:line`` of classes and frames, signatures."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Callable

__all__ = ["closest", "code_roots", "def_line", "describe", "driver_frame", "exc_text", "file_of",
           "frame_text", "quoted", "unbound_signature", "where"]


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name``, ignoring case (``mydriver`` finds ``MyDriver``).

    Only those nearly as close as the best: ``servise`` suggests ``service``, not also
    ``device``.
    """
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    scored = sorted(((difflib.SequenceMatcher(None, name.lower(), c).ratio(), c)
                     for c in by_lower), key=lambda sc: (-sc[0], sc[1]))
    scored = [(score, c) for score, c in scored if score >= 0.6]
    if not scored:
        return []
    best = scored[0][0]
    return [by_lower[c] for score, c in scored[:n] if score >= best - 0.1]


def quoted(items: list[str], sep: str) -> str:
    """``items`` as Python literals, joined by ``sep``."""
    return sep.join(repr(i) for i in items)


def describe(obj: Any) -> str:
    """What ``obj`` is and where it is defined, for driver-load errors."""
    if inspect.isclass(obj):
        return f"class {obj.__module__}.{obj.__qualname__} ({where(obj)})"
    if inspect.isfunction(obj):
        return f"function {obj.__module__}.{obj.__qualname__} ({where(obj)})"
    if inspect.ismodule(obj):
        return f"module {obj.__name__}"
    return f"{type(obj).__name__} {obj!r}"


def where(obj: Any) -> str:
    """``file:line`` of a class or function, as far as Python can tell."""
    try:
        path = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except TypeError:
        return "built-in"
    try:
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return str(path)
    return f"{path}:{line}"


def file_of(module: ModuleType) -> str:
    """The module's file, or a namespace package's folders."""
    return getattr(module, "__file__", None) or ", ".join(getattr(module, "__path__", [])) \
        or "built-in"


def exc_text(err: BaseException) -> str:
    """``Type: message`` of an exception (the type alone if it has no message)."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _annotation(ann: Any) -> str:
    if isinstance(ann, str):
        return ann  # the bases use `from __future__ import annotations`
    if inspect.isclass(ann):
        return ann.__name__
    return inspect.formatannotation(ann)


def def_line(name: str, func: Callable[..., Any]) -> str:
    """``def sync(self, router: RouterState) -> Statuses:`` from the base's method."""
    sig = inspect.signature(func)
    params = [p.name if p.annotation is p.empty else f"{p.name}: {_annotation(p.annotation)}"
              for p in sig.parameters.values()]
    ret = "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    return f"def {name}({', '.join(params)}){ret}:"


def unbound_signature(func: Any) -> str:
    """``func``'s signature as text, ``(...)`` when Python cannot tell it."""
    try:
        return str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(...)"


def code_roots(module_name: str) -> list[str]:
    """Files and folders of the top-level package ``module_name`` belongs to."""
    top = module_name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [str(Path(p)) + "/" for p in spec.submodule_search_locations]
    return [spec.origin] if spec.origin else []


def driver_frame(tb: TracebackType | None,
                 roots: list[str]) -> traceback.FrameSummary | None:
    """The last frame of ``tb`` in the driver's own code, else the last real frame."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<frozen")]
    mine = [f for f in frames if any(f.filename == r or f.filename.startswith(r)
                                     for r in roots)]
    return (mine or frames or [None])[-1]


def frame_text(tb: TracebackType | None, roots: list[str]) -> str:
    """``\\nat FILE:LINE, in FUNC: source`` for the driver's frame (and where it was raised)."""
    frame = driver_frame(tb, roots)
    if frame is None:
        return ""
    text = f"\nat {frame.filename}:{frame.lineno}, in {frame.name}"
    if frame.line:
        text += f": {frame.line.strip()}"
    last = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<frozen")][-1]
    if (last.filename, last.lineno) != (frame.filename, frame.lineno):
        text += f" (raised in {last.filename}:{last.lineno})"
    return text
