from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.encoding import Encoding






T = TypeVar("T", bound="HotKey")



@_attrs_define
class HotKey:
    """ One hot key.

        Attributes:
            count (int): Operations counted in the window.
            error (int): How much `count` may overestimate (top-k sketches).
            key (str): The key (see `key_encoding`).
            key_encoding (Encoding): How a key or value is written in a JSON string.
     """

    count: int
    error: int
    key: str
    key_encoding: Encoding
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        count = self.count

        error = self.error

        key = self.key

        key_encoding = self.key_encoding.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "count": count,
            "error": error,
            "key": key,
            "key_encoding": key_encoding,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        count = d.pop("count")

        error = d.pop("error")

        key = d.pop("key")

        key_encoding = Encoding(d.pop("key_encoding"))




        hot_key = cls(
            count=count,
            error=error,
            key=key,
            key_encoding=key_encoding,
        )


        hot_key.additional_properties = d
        return hot_key

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
