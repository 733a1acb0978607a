from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="PutKvExpiryType0")



@_attrs_define
class PutKvExpiryType0:
    """ 
        Attributes:
            ttl (int): Seconds from now until the value expires.
     """

    ttl: int





    def to_dict(self) -> dict[str, Any]:
        ttl = self.ttl


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "ttl": ttl,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        ttl = d.pop("ttl")

        put_kv_expiry_type_0 = cls(
            ttl=ttl,
        )

        return put_kv_expiry_type_0

