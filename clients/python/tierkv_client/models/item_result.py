from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.encoding import Encoding
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.item_error import ItemError





T = TypeVar("T", bound="ItemResult")



@_attrs_define
class ItemResult:
    """ Result of one item.

        Attributes:
            status (int): HTTP-like status of the item (200, 201, 204, 404, 412, ...).
            content_type (None | str | Unset): Stored content type (get).
            error (ItemError | None | Unset):
            expires_at (int | None | Unset): Expiry in unix milliseconds (get, put).
            value (None | str | Unset): The value (get).
            value_encoding (Encoding | None | Unset):
            version (int | None | Unset): Version read or written.
     """

    status: int
    content_type: None | str | Unset = UNSET
    error: ItemError | None | Unset = UNSET
    expires_at: int | None | Unset = UNSET
    value: None | str | Unset = UNSET
    value_encoding: Encoding | None | Unset = UNSET
    version: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.item_error import ItemError
        status = self.status

        content_type: None | str | Unset
        if isinstance(self.content_type, Unset):
            content_type = UNSET
        else:
            content_type = self.content_type

        error: dict[str, Any] | None | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        elif isinstance(self.error, ItemError):
            error = self.error.to_dict()
        else:
            error = self.error

        expires_at: int | None | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        else:
            expires_at = self.expires_at

        value: None | str | Unset
        if isinstance(self.value, Unset):
            value = UNSET
        else:
            value = self.value

        value_encoding: None | str | Unset
        if isinstance(self.value_encoding, Unset):
            value_encoding = UNSET
        elif isinstance(self.value_encoding, Encoding):
            value_encoding = self.value_encoding.value
        else:
            value_encoding = self.value_encoding

        version: int | None | Unset
        if isinstance(self.version, Unset):
            version = UNSET
        else:
            version = self.version


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "status": status,
        })
        if content_type is not UNSET:
            field_dict["content_type"] = content_type
        if error is not UNSET:
            field_dict["error"] = error
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at
        if value is not UNSET:
            field_dict["value"] = value
        if value_encoding is not UNSET:
            field_dict["value_encoding"] = value_encoding
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.item_error import ItemError
        d = dict(src_dict)
        status = d.pop("status")

        def _parse_content_type(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        content_type = _parse_content_type(d.pop("content_type", UNSET))


        def _parse_error(data: object) -> ItemError | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = ItemError.from_dict(data)



                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ItemError | None | Unset, data)

        error = _parse_error(d.pop("error", UNSET))


        def _parse_expires_at(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expires_at", UNSET))


        def _parse_value(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        value = _parse_value(d.pop("value", UNSET))


        def _parse_value_encoding(data: object) -> Encoding | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                value_encoding_type_0 = Encoding(data)



                return value_encoding_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Encoding | None | Unset, data)

        value_encoding = _parse_value_encoding(d.pop("value_encoding", UNSET))


        def _parse_version(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        version = _parse_version(d.pop("version", UNSET))


        item_result = cls(
            status=status,
            content_type=content_type,
            error=error,
            expires_at=expires_at,
            value=value,
            value_encoding=value_encoding,
            version=version,
        )


        item_result.additional_properties = d
        return item_result

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
