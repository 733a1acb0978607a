from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.role import Role
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="KeyInfo")



@_attrs_define
class KeyInfo:
    """ One key, without its secret.

        Attributes:
            created_at_ms (int): When it was made, unix milliseconds.
            id (str): The key's public id.
            name (str): Its name.
            prefixes (list[str]): Its prefixes (empty: every key).
            role (Role): What a key may do.
            last_used_at_ms (int | None | Unset): When a gateway last accepted it, unix milliseconds (other gateways' use is
                written
                once a minute); null if never.
     """

    created_at_ms: int
    id: str
    name: str
    prefixes: list[str]
    role: Role
    last_used_at_ms: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        created_at_ms = self.created_at_ms

        id = self.id

        name = self.name

        prefixes = self.prefixes



        role = self.role.value

        last_used_at_ms: int | None | Unset
        if isinstance(self.last_used_at_ms, Unset):
            last_used_at_ms = UNSET
        else:
            last_used_at_ms = self.last_used_at_ms


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "created_at_ms": created_at_ms,
            "id": id,
            "name": name,
            "prefixes": prefixes,
            "role": role,
        })
        if last_used_at_ms is not UNSET:
            field_dict["last_used_at_ms"] = last_used_at_ms

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at_ms = d.pop("created_at_ms")

        id = d.pop("id")

        name = d.pop("name")

        prefixes = cast(list[str], d.pop("prefixes"))


        role = Role(d.pop("role"))




        def _parse_last_used_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        last_used_at_ms = _parse_last_used_at_ms(d.pop("last_used_at_ms", UNSET))


        key_info = cls(
            created_at_ms=created_at_ms,
            id=id,
            name=name,
            prefixes=prefixes,
            role=role,
            last_used_at_ms=last_used_at_ms,
        )


        key_info.additional_properties = d
        return key_info

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
