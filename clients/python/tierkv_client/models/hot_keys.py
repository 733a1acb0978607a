from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.cache_tier import CacheTier
  from ..models.hot_key import HotKey





T = TypeVar("T", bound="HotKeys")



@_attrs_define
class HotKeys:
    """ `GET /admin/v1/hot-keys`: this gateway's hot keys and its value cache's hits per tier.

        Attributes:
            available (bool): Whether this gateway tracks hot keys (always true since the gateway cache tier;
                kept for dashboards built against older gateways).
            cache (list[CacheTier]): The value cache, per tier: `memory`, then `disk` when the gateway has a disk tier
                (which sees the memory tier's misses); empty when the gateway keeps no value cache.
            reads (list[HotKey]): Most-read keys, hottest first.
            writes (list[HotKey]): Most-written keys, hottest first.
            window_secs (int | None | Unset): The window the counts cover, seconds.
     """

    available: bool
    cache: list[CacheTier]
    reads: list[HotKey]
    writes: list[HotKey]
    window_secs: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.cache_tier import CacheTier
        from ..models.hot_key import HotKey
        available = self.available

        cache = []
        for cache_item_data in self.cache:
            cache_item = cache_item_data.to_dict()
            cache.append(cache_item)



        reads = []
        for reads_item_data in self.reads:
            reads_item = reads_item_data.to_dict()
            reads.append(reads_item)



        writes = []
        for writes_item_data in self.writes:
            writes_item = writes_item_data.to_dict()
            writes.append(writes_item)



        window_secs: int | None | Unset
        if isinstance(self.window_secs, Unset):
            window_secs = UNSET
        else:
            window_secs = self.window_secs


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "available": available,
            "cache": cache,
            "reads": reads,
            "writes": writes,
        })
        if window_secs is not UNSET:
            field_dict["window_secs"] = window_secs

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.cache_tier import CacheTier
        from ..models.hot_key import HotKey
        d = dict(src_dict)
        available = d.pop("available")

        cache = []
        _cache = d.pop("cache")
        for cache_item_data in (_cache):
            cache_item = CacheTier.from_dict(cache_item_data)



            cache.append(cache_item)


        reads = []
        _reads = d.pop("reads")
        for reads_item_data in (_reads):
            reads_item = HotKey.from_dict(reads_item_data)



            reads.append(reads_item)


        writes = []
        _writes = d.pop("writes")
        for writes_item_data in (_writes):
            writes_item = HotKey.from_dict(writes_item_data)



            writes.append(writes_item)


        def _parse_window_secs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        window_secs = _parse_window_secs(d.pop("window_secs", UNSET))


        hot_keys = cls(
            available=available,
            cache=cache,
            reads=reads,
            writes=writes,
            window_secs=window_secs,
        )


        hot_keys.additional_properties = d
        return hot_keys

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
