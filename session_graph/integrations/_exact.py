"""What the integrations share: a value must survive JSON exactly to be stored as a native form."""

from __future__ import annotations

import math
from typing import Any

from session_graph.errors import ValidationError


def check_exact_json(value: Any, where: str) -> None:
    """Refuse what a JSON round trip would change or lose (tuples, sets, objects, non-str
    keys, NaN, lone surrogates), naming where: a message an integration stores must read
    back ``==`` to what it was given."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(f"{path} is not valid Unicode (lone surrogate)") from None
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{path} is {item}, which JSON cannot hold")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValidationError(
                        f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are strings"
                    )
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
        else:
            raise ValidationError(
                f"{path} is a {type(item).__name__}, which cannot be stored exactly: message "
                "fields must hold JSON values (dict, list, str, int, float, bool, None)"
            )
