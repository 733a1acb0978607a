from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="GatewayInfo")



@_attrs_define
class GatewayInfo:
    """ The gateway answering.

        Attributes:
            now_ms (int): Its clock now, unix milliseconds.
            started_at_ms (int): When it started, unix milliseconds.
            version (str): Its software version.
     """

    now_ms: int
    started_at_ms: int
    version: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        now_ms = self.now_ms

        started_at_ms = self.started_at_ms

        version = self.version


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "now_ms": now_ms,
            "started_at_ms": started_at_ms,
            "version": version,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        now_ms = d.pop("now_ms")

        started_at_ms = d.pop("started_at_ms")

        version = d.pop("version")

        gateway_info = cls(
            now_ms=now_ms,
            started_at_ms=started_at_ms,
            version=version,
        )


        gateway_info.additional_properties = d
        return gateway_info

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
