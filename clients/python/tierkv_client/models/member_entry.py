from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.member_state_name import MemberStateName






T = TypeVar("T", bound="MemberEntry")



@_attrs_define
class MemberEntry:
    """ A member of the shard map.

        Attributes:
            addr (str): Address in the shard map.
            id (int): Node id.
            state (MemberStateName): State of a member in the shard map.
     """

    addr: str
    id: int
    state: MemberStateName
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        addr = self.addr

        id = self.id

        state = self.state.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "addr": addr,
            "id": id,
            "state": state,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        addr = d.pop("addr")

        id = d.pop("id")

        state = MemberStateName(d.pop("state"))




        member_entry = cls(
            addr=addr,
            id=id,
            state=state,
        )


        member_entry.additional_properties = d
        return member_entry

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
