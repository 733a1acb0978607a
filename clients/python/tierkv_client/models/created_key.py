from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.role import Role
from typing import cast






T = TypeVar("T", bound="CreatedKey")



@_attrs_define
class CreatedKey:
    """ A key just created: the only answer that ever holds `key`.

        Attributes:
            created_at_ms (int): When it was made, unix milliseconds.
            id (str): The key's public id.
            key (str): The whole key, `tkv_<id>_<secret>`: send it as `Authorization: Bearer <key>`. It is
                not stored and cannot be shown again.
            name (str): Its name.
            prefixes (list[str]): Its prefixes.
            role (Role): What a key may do.
     """

    created_at_ms: int
    id: str
    key: str
    name: str
    prefixes: list[str]
    role: Role
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        created_at_ms = self.created_at_ms

        id = self.id

        key = self.key

        name = self.name

        prefixes = self.prefixes



        role = self.role.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "created_at_ms": created_at_ms,
            "id": id,
            "key": key,
            "name": name,
            "prefixes": prefixes,
            "role": role,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at_ms = d.pop("created_at_ms")

        id = d.pop("id")

        key = d.pop("key")

        name = d.pop("name")

        prefixes = cast(list[str], d.pop("prefixes"))


        role = Role(d.pop("role"))




        created_key = cls(
            created_at_ms=created_at_ms,
            id=id,
            key=key,
            name=name,
            prefixes=prefixes,
            role=role,
        )


        created_key.additional_properties = d
        return created_key

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
