from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.shard_info import ShardInfo





T = TypeVar("T", bound="ShardList")



@_attrs_define
class ShardList:
    """ `GET /admin/v1/shards`.

        Attributes:
            shards (list[ShardInfo]): Every shard, by id.
     """

    shards: list[ShardInfo]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.shard_info import ShardInfo
        shards = []
        for shards_item_data in self.shards:
            shards_item = shards_item_data.to_dict()
            shards.append(shards_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "shards": shards,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.shard_info import ShardInfo
        d = dict(src_dict)
        shards = []
        _shards = d.pop("shards")
        for shards_item_data in (_shards):
            shards_item = ShardInfo.from_dict(shards_item_data)



            shards.append(shards_item)


        shard_list = cls(
            shards=shards,
        )


        shard_list.additional_properties = d
        return shard_list

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
