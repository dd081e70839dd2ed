"""The paper, one function per section: each takes the `Doc` (results, figures, command lines) and
returns its HTML. `paper()` puts them in page order."""

from __future__ import annotations

from ..doc import Doc
from .closing import conclusion, discussion, limitations
from .final import final_model
from .front import abstract, title
from .methods import introduction, methods
from .references import references
from .reproduction import reproduction
from .results import results

SECTIONS = (title, abstract, introduction, methods, results, final_model, discussion, limitations, conclusion,
            reproduction, references)


def paper(doc: Doc) -> str:
    """The paper's HTML body; every number is formatted from the results or the facts (`report.load`)."""
    return "\n".join(s for s in (section(doc) for section in SECTIONS) if s)
