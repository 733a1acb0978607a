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
  from ..models.list_item import ListItem





T = TypeVar("T", bound="ListPage")



@_attrs_define
class ListPage:
    """ A page of keys.

        Attributes:
            items (list[ListItem]): Keys in byte order.
            next_start_after (None | str | Unset): Cursor for the next page; null at the end.
            next_start_after_encoding (Encoding | None | Unset):
     """

    items: list[ListItem]
    next_start_after: None | str | Unset = UNSET
    next_start_after_encoding: Encoding | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.list_item import ListItem
        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)



        next_start_after: None | str | Unset
        if isinstance(self.next_start_after, Unset):
            next_start_after = UNSET
        else:
            next_start_after = self.next_start_after

        next_start_after_encoding: None | str | Unset
        if isinstance(self.next_start_after_encoding, Unset):
            next_start_after_encoding = UNSET
        elif isinstance(self.next_start_after_encoding, Encoding):
            next_start_after_encoding = self.next_start_after_encoding.value
        else:
            next_start_after_encoding = self.next_start_after_encoding


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "items": items,
        })
        if next_start_after is not UNSET:
            field_dict["next_start_after"] = next_start_after
        if next_start_after_encoding is not UNSET:
            field_dict["next_start_after_encoding"] = next_start_after_encoding

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.list_item import ListItem
        d = dict(src_dict)
        items = []
        _items = d.pop("items")
        for items_item_data in (_items):
            items_item = ListItem.from_dict(items_item_data)



            items.append(items_item)


        def _parse_next_start_after(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        next_start_after = _parse_next_start_after(d.pop("next_start_after", UNSET))


        def _parse_next_start_after_encoding(data: object) -> Encoding | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                next_start_after_encoding_type_0 = Encoding(data)



                return next_start_after_encoding_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Encoding | None | Unset, data)

        next_start_after_encoding = _parse_next_start_after_encoding(d.pop("next_start_after_encoding", UNSET))


        list_page = cls(
            items=items,
            next_start_after=next_start_after,
            next_start_after_encoding=next_start_after_encoding,
        )


        list_page.additional_properties = d
        return list_page

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
