from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.batch_op import BatchOp
from ..models.encoding import Encoding
from ..models.star import Star
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="BatchItem")



@_attrs_define
class BatchItem:
    """ One item of a batch.

        Attributes:
            key (str): The key (see `key_encoding`).
            op (BatchOp): Operation of a batch item.
            content_type (None | str | Unset): Content type to store (put only): a media type such as `text/plain;
                charset=utf-8`.
            if_match (int | None | Unset): Write only if this is the current version (put, delete).
            if_none_match (None | Star | Unset):
            key_encoding (Encoding | None | Unset):
            ttl (int | None | Unset): Seconds until the value expires, 1..=315360000 (put only).
            value (None | str | Unset): The value (put only; see `value_encoding`). Default: empty.
            value_encoding (Encoding | None | Unset):
     """

    key: str
    op: BatchOp
    content_type: None | str | Unset = UNSET
    if_match: int | None | Unset = UNSET
    if_none_match: None | Star | Unset = UNSET
    key_encoding: Encoding | None | Unset = UNSET
    ttl: int | None | Unset = UNSET
    value: None | str | Unset = UNSET
    value_encoding: Encoding | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        key = self.key

        op = self.op.value

        content_type: None | str | Unset
        if isinstance(self.content_type, Unset):
            content_type = UNSET
        else:
            content_type = self.content_type

        if_match: int | None | Unset
        if isinstance(self.if_match, Unset):
            if_match = UNSET
        else:
            if_match = self.if_match

        if_none_match: None | str | Unset
        if isinstance(self.if_none_match, Unset):
            if_none_match = UNSET
        elif isinstance(self.if_none_match, Star):
            if_none_match = self.if_none_match.value
        else:
            if_none_match = self.if_none_match

        key_encoding: None | str | Unset
        if isinstance(self.key_encoding, Unset):
            key_encoding = UNSET
        elif isinstance(self.key_encoding, Encoding):
            key_encoding = self.key_encoding.value
        else:
            key_encoding = self.key_encoding

        ttl: int | None | Unset
        if isinstance(self.ttl, Unset):
            ttl = UNSET
        else:
            ttl = self.ttl

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


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "key": key,
            "op": op,
        })
        if content_type is not UNSET:
            field_dict["content_type"] = content_type
        if if_match is not UNSET:
            field_dict["if_match"] = if_match
        if if_none_match is not UNSET:
            field_dict["if_none_match"] = if_none_match
        if key_encoding is not UNSET:
            field_dict["key_encoding"] = key_encoding
        if ttl is not UNSET:
            field_dict["ttl"] = ttl
        if value is not UNSET:
            field_dict["value"] = value
        if value_encoding is not UNSET:
            field_dict["value_encoding"] = value_encoding

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        op = BatchOp(d.pop("op"))




        def _parse_content_type(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        content_type = _parse_content_type(d.pop("content_type", UNSET))


        def _parse_if_match(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        if_match = _parse_if_match(d.pop("if_match", UNSET))


        def _parse_if_none_match(data: object) -> None | Star | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                if_none_match_type_0 = Star(data)



                return if_none_match_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Star | Unset, data)

        if_none_match = _parse_if_none_match(d.pop("if_none_match", UNSET))


        def _parse_key_encoding(data: object) -> Encoding | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                key_encoding_type_0 = Encoding(data)



                return key_encoding_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Encoding | None | Unset, data)

        key_encoding = _parse_key_encoding(d.pop("key_encoding", UNSET))


        def _parse_ttl(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        ttl = _parse_ttl(d.pop("ttl", UNSET))


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


        batch_item = cls(
            key=key,
            op=op,
            content_type=content_type,
            if_match=if_match,
            if_none_match=if_none_match,
            key_encoding=key_encoding,
            ttl=ttl,
            value=value,
            value_encoding=value_encoding,
        )

        return batch_item

