from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.role import Role
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="CreateKey")



@_attrs_define
class CreateKey:
    """ `POST /admin/v1/keys`.

        Attributes:
            name (str): What the key is for: 1..=128 characters, no control characters.
            role (Role): What a key may do.
            prefixes (list[str] | Unset): Key prefixes it is limited to (not for `admin` keys: 400); none: every key.
     """

    name: str
    role: Role
    prefixes: list[str] | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        name = self.name

        role = self.role.value

        prefixes: list[str] | Unset = UNSET
        if not isinstance(self.prefixes, Unset):
            prefixes = self.prefixes




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "name": name,
            "role": role,
        })
        if prefixes is not UNSET:
            field_dict["prefixes"] = prefixes

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        role = Role(d.pop("role"))




        prefixes = cast(list[str], d.pop("prefixes", UNSET))


        create_key = cls(
            name=name,
            role=role,
            prefixes=prefixes,
        )

        return create_key

