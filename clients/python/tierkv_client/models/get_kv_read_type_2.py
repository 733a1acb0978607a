from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.get_kv_read_type_2_consistency import GetKvReadType2Consistency






T = TypeVar("T", bound="GetKvReadType2")



@_attrs_define
class GetKvReadType2:
    """ 
        Attributes:
            consistency (GetKvReadType2Consistency):
            max_staleness (str): `<n>ms` or `<n>s`, at most 3600s. Default: 1s (`gateway.cache.default_max_staleness`).
     """

    consistency: GetKvReadType2Consistency
    max_staleness: str





    def to_dict(self) -> dict[str, Any]:
        consistency = self.consistency.value

        max_staleness = self.max_staleness


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "consistency": consistency,
            "max_staleness": max_staleness,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        consistency = GetKvReadType2Consistency(d.pop("consistency"))




        max_staleness = d.pop("max_staleness")

        get_kv_read_type_2 = cls(
            consistency=consistency,
            max_staleness=max_staleness,
        )

        return get_kv_read_type_2

