"""Partner Center's collection envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def collection(
    items: Sequence[Any],
    *,
    total: int | None = None,
    continuation: str | None = None,
    next_uri: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "totalCount": len(items) if total is None else total,
        "items": list(items),
        "links": {},
        "attributes": {"objectType": "Collection"},
    }
    if continuation:
        body["links"]["next"] = {
            "uri": next_uri or "",
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": continuation}],
        }
    return body
