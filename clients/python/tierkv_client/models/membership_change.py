from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.member_entry import MemberEntry





T = TypeVar("T", bound="MembershipChange")



@_attrs_define
class MembershipChange:
    """ The answer of a membership operation: the shard map version it published.

        Attributes:
            map_version (int): The version published (follow the moves until `GET /admin/v1/moves` reports this
                version or a newer one with nothing moving).
            members (list[MemberEntry]): Every member of that version.
     """

    map_version: int
    members: list[MemberEntry]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.member_entry import MemberEntry
        map_version = self.map_version

        members = []
        for members_item_data in self.members:
            members_item = members_item_data.to_dict()
            members.append(members_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "map_version": map_version,
            "members": members,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.member_entry import MemberEntry
        d = dict(src_dict)
        map_version = d.pop("map_version")

        members = []
        _members = d.pop("members")
        for members_item_data in (_members):
            members_item = MemberEntry.from_dict(members_item_data)



            members.append(members_item)


        membership_change = cls(
            map_version=map_version,
            members=members,
        )


        membership_change.additional_properties = d
        return membership_change

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
