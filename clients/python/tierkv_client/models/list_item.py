from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.encoding import Encoding
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="ListItem")



@_attrs_define
class ListItem:
    """ One listed key.

        Attributes:
            content_type (str): Stored content type.
            key (str): The key (see `key_encoding`).
            key_encoding (Encoding): How a key or value is written in a JSON string.
            size (int): Value size in bytes.
            version (int): Current version.
            expires_at (int | None | Unset): Expiry in unix milliseconds, if set.
     """

    content_type: str
    key: str
    key_encoding: Encoding
    size: int
    version: int
    expires_at: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        content_type = self.content_type

        key = self.key

        key_encoding = self.key_encoding.value

        size = self.size

        version = self.version

        expires_at: int | None | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        else:
            expires_at = self.expires_at


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "content_type": content_type,
            "key": key,
            "key_encoding": key_encoding,
            "size": size,
            "version": version,
        })
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        content_type = d.pop("content_type")

        key = d.pop("key")

        key_encoding = Encoding(d.pop("key_encoding"))




        size = d.pop("size")

        version = d.pop("version")

        def _parse_expires_at(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expires_at", UNSET))


        list_item = cls(
            content_type=content_type,
            key=key,
            key_encoding=key_encoding,
            size=size,
            version=version,
            expires_at=expires_at,
        )


        list_item.additional_properties = d
        return list_item

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
