from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="PutKvExpiryType1")



@_attrs_define
class PutKvExpiryType1:
    """ 
        Attributes:
            expires_at (int): Unix time in seconds at which the value expires: in the future, at most 315360000 s away (400
                invalid_ttl otherwise).
     """

    expires_at: int





    def to_dict(self) -> dict[str, Any]:
        expires_at = self.expires_at


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "expires_at": expires_at,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        expires_at = d.pop("expires_at")

        put_kv_expiry_type_1 = cls(
            expires_at=expires_at,
        )

        return put_kv_expiry_type_1

