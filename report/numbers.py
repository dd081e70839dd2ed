"""Every number printed in the report must come from the results files.

The paper formats numbers only with `pct`, `fixed`, `millions` and `thousands`; the
checker rebuilds every token those formatters can produce from the results
and environment, and lists any number in the page that is not among them.
"""

from __future__ import annotations

import html as _html
import json
import math
import re

# Numbers the text may use that are facts of the method, not measurements:
# CIFAR-10's 10 classes and 32-px images, the 95% interval, and the years of
# the cited works. (Another dataset's classes and image size are in the facts.)
CONSTANTS = {"10", "32", "95", "2019", "2009", "1947", "1993", "1927", "2021", "2015", "2110.06893"}

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def pct(value: float, digits: int = 1) -> str:
    """0.8731 -> '87.3' (a fraction shown as a percentage)."""
    return f"{value * 100:.{digits}f}"


def fixed(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def millions(value: float) -> str:
    return f"{value / 1e6:.1f}"


def thousands(value: float) -> str:
    return f"{value / 1e3:.0f}"


def _variants(value) -> set[str]:
    out = set()
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return out
        for v in {value, abs(value)}:  # the text writes a sign as its own character: "-0.18" is "0.18"
            out.add(str(int(v)) if float(v).is_integer() else str(v))
            for d in (0, 1, 2, 3):
                out.add(fixed(v, d))
                out.add(pct(v, d))
            out.add(millions(v))
            out.add(thousands(v))
        return out
    text = str(value)
    try:
        return set().union(*[_variants(v) for v in _flatten(json.loads(text))]) | set(_NUMBER.findall(text))
    except (ValueError, TypeError):
        return set(_NUMBER.findall(text))


def _flatten(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _flatten(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _flatten(v)
    else:
        yield obj


def allowed_numbers(frame, environment: dict) -> set[str]:
    """Every token the report's formatters can derive from the results and environment."""
    allowed = set(CONSTANTS)
    for value in frame.to_numpy().ravel():
        if hasattr(value, "item"):
            value = value.item()
        allowed |= _variants(value)
    for value in _flatten(environment):
        allowed |= _variants(value)
    # counts the text states: rows, backbones, sizes
    allowed |= {str(len(frame)), str(frame["model"].nunique()), str(frame["img_size"].nunique())}
    allowed |= {str(n) for n in frame.groupby("weights")["model"].nunique()}
    return allowed


def visible_text(page: str) -> str:
    """The page's text as a reader sees it: no tags, scripts, styles or image data."""
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    page = re.sub(r"(?s)<[^>]+>", " ", page)
    return _html.unescape(page)


def unsupported_numbers(page: str, frame, environment: dict) -> list[str]:
    """Numbers in the page's text that the results do not contain."""
    page = re.sub(r"(?s)<p class=authors>.*?</p>", " ", page)  # a name, not a measurement
    text = visible_text(page)
    for name in sorted(set(frame["model"]), key=len, reverse=True):  # digits inside names: ResNet50
        text = text.replace(str(name), " ")
    text = re.sub(r"\b(Figure|Table|CIFAR-)\s?\d+", " ", text)
    text = re.sub(r"\[\d+(?:, \d+)*\]", " ", text)  # citations: [1], [2, 3]
    allowed = allowed_numbers(frame, environment)
    return sorted({tok for tok in _NUMBER.findall(text) if tok not in allowed})
