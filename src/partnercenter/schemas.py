"""Shapes shared by every area's API: the base of every request body.

Partner Center reads JSON property names without regard to case: its own examples send
``{"CompanyProfile": {"Domain": ...}}`` where the reference names ``companyProfile.domain``.
Every request model derives from :class:`RequestModel`, which maps each incoming property
name onto the field it names case-insensitively before validation, at every level of
nesting (nested request models derive from it too). Responses keep the documented camelCase.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, model_validator


class RequestModel(BaseModel):
    """Base of every JSON request body: property names are matched without regard to case.

    ``{"LineItems": [{"CatalogItemId": "A:B:C", "Quantity": 1}]}`` validates exactly like
    ``{"lineItems": [{"catalogItemId": "A:B:C", "quantity": 1}]}``. A name that matches no
    field is passed on unchanged, so the model's own ``extra`` setting still decides whether
    it is refused. When the body names one field twice in different cases, the exact
    spelling wins.
    """

    _casefold_names: ClassVar[dict[str, str]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            names.setdefault(name.casefold(), info.alias or name)
            if info.alias:
                names.setdefault(info.alias.casefold(), info.alias)
        cls._casefold_names = names

    @model_validator(mode="before")
    @classmethod
    def _match_names_without_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = cls._casefold_names
        matched: dict[Any, Any] = {}
        for key, value in data.items():
            target = known.get(key.casefold(), key) if isinstance(key, str) else key
            if target in matched and key != target:
                continue  # the exact spelling, seen first or later, wins
            matched[target] = value
        return matched
