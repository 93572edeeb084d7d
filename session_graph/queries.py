"""Named Cypher queries loaded from ``cypher/*.cypher``.

A file holds blocks that start with ``// name: <name>``; the comment lines right after the
header document the query. Queries take user data as ``$parameters`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_HEADER = re.compile(r"^//\s*name:\s*(?P<name>[A-Za-z0-9_]+)\s*$")


@dataclass(frozen=True)
class Query:
    """One saved query: its name, the file it came from, its doc comment and its text."""

    name: str
    file: str
    doc: str
    text: str

    def statements(self) -> list[str]:
        """The statements of a multi-statement block (migrations), split on ``;``."""
        return [part.strip() for part in self.text.split(";") if part.strip()]


def cypher_dir() -> Path:
    """Where the ``.cypher`` files are: inside an installed wheel, else the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "cypher", here.parent / "cypher"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no cypher/ directory next to {here}")


def parse(text: str, file: str) -> dict[str, Query]:
    """Split one file into its named queries."""
    queries: dict[str, Query] = {}
    name: str | None = None
    doc: list[str] = []
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {file}")
        text = "\n".join(body).strip()
        if not text:
            raise ValueError(f"query {name!r} in {file} is empty")
        queries[name] = Query(name, file, " ".join(doc), text)

    for line in text.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            flush()
            name, doc, body = header["name"], [], []
        elif name is not None:
            stripped = line.strip()
            if stripped.startswith("//") and not body:
                doc.append(stripped.lstrip("/").strip())
            elif not stripped.startswith("//"):
                body.append(line)
    flush()
    return queries


@cache
def load_all() -> dict[str, Query]:
    """Every named query of every ``.cypher`` file, by name."""
    found: dict[str, Query] = {}
    for path in sorted(cypher_dir().glob("*.cypher")):
        for name, query in parse(path.read_text(encoding="utf-8"), path.name).items():
            if name in found:
                raise ValueError(f"query {name!r} is in both {found[name].file} and {path.name}")
            found[name] = query
    return found


def get(name: str) -> Query:
    """The saved query called ``name``.

    Raises:
        KeyError: no ``.cypher`` file defines it; the message lists the known names.
    """
    queries = load_all()
    try:
        return queries[name]
    except KeyError:
        raise KeyError(f"no saved query {name!r}; known: {', '.join(sorted(queries))}") from None


def cypher(name: str) -> str:
    """The text of the saved query called ``name``."""
    return get(name).text
