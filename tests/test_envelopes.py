"""The fast JSON response writes the same bytes as the standard one."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from partnercenter.envelopes import FastJSONResponse

# What routes hand to it: plain JSON types built by the route (no floats: amounts are text).
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_fast_json_response_writes_the_standard_bytes(value: object) -> None:
    fast = FastJSONResponse(value).body
    assert fast == JSONResponse(value).body
    assert json.loads(fast) == value


def test_an_activity_page_shape_round_trips() -> None:
    body = {
        "totalCount": 1,
        "items": [{"customerName": "Café «Ñandú» \u2028 <script>", "customizedData": []}],
        "links": {},
        "attributes": {"objectType": "Collection"},
    }
    assert FastJSONResponse(body).body == JSONResponse(body).body
