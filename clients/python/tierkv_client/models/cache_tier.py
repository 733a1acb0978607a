from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="CacheTier")



@_attrs_define
class CacheTier:
    """ One tier of the value cache.

        Attributes:
            hits (int): Lookups that hit.
            misses (int): Lookups that missed.
            tier (str): `memory` or `disk`.
            hit_ratio (float | None | Unset): hits / (hits + misses); null before the first lookup.
     """

    hits: int
    misses: int
    tier: str
    hit_ratio: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        hits = self.hits

        misses = self.misses

        tier = self.tier

        hit_ratio: float | None | Unset
        if isinstance(self.hit_ratio, Unset):
            hit_ratio = UNSET
        else:
            hit_ratio = self.hit_ratio


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "hits": hits,
            "misses": misses,
            "tier": tier,
        })
        if hit_ratio is not UNSET:
            field_dict["hit_ratio"] = hit_ratio

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        hits = d.pop("hits")

        misses = d.pop("misses")

        tier = d.pop("tier")

        def _parse_hit_ratio(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        hit_ratio = _parse_hit_ratio(d.pop("hit_ratio", UNSET))


        cache_tier = cls(
            hits=hits,
            misses=misses,
            tier=tier,
            hit_ratio=hit_ratio,
        )


        cache_tier.additional_properties = d
        return cache_tier

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
