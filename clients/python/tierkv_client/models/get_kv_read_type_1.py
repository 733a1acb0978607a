from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.get_kv_read_type_1_consistency import GetKvReadType1Consistency






T = TypeVar("T", bound="GetKvReadType1")



@_attrs_define
class GetKvReadType1:
    """ 
        Attributes:
            consistency (GetKvReadType1Consistency):
     """

    consistency: GetKvReadType1Consistency





    def to_dict(self) -> dict[str, Any]:
        consistency = self.consistency.value


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "consistency": consistency,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        consistency = GetKvReadType1Consistency(d.pop("consistency"))




        get_kv_read_type_1 = cls(
            consistency=consistency,
        )

        return get_kv_read_type_1

