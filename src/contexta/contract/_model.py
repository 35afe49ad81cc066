"""The base every contract model shares: plain-dict conversion for JSON and back."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from contexta.errors import ValidationError


class ContractModel:
    """Mixin for frozen contract dataclasses: `to_dict()` / `from_dict()` including nested models."""

    __slots__ = ()
    # field name -> model class, for fields that hold another contract model
    nested_models: ClassVar[dict[str, type[ContractModel]]] = {}

    def to_dict(self, *, omit_none: bool = False) -> dict[str, Any]:
        """A plain mapping of the model's fields (nested models become mappings too)."""
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if value is None and omit_none:
                continue
            if isinstance(value, ContractModel):
                value = value.to_dict(omit_none=omit_none)
            result[field.name] = value
        return result

    @classmethod
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The field values of `from_dict` (a fresh mapping) with anything JSON cannot hold as-is
        decoded; a model with such a field overrides this (see MetricPayload)."""
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild (and so re-validate) a model from `to_dict()` output."""
        known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values = {key: value for key, value in data.items() if key in known}
        for name, model in cls.nested_models.items():
            if isinstance(values.get(name), dict):
                values[name] = model.from_dict(values[name])
        values = cls._decoded(values)
        try:
            return cls(**values)
        except TypeError as error:  # a required field is missing
            raise ValidationError(
                f"cannot build {cls.__name__}: {error}", code="model_fields_invalid"
            ) from None
