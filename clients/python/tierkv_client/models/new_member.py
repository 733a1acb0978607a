from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="NewMember")



@_attrs_define
class NewMember:
    """ `POST /admin/v1/members`: the member to add (design note 0009 §6). Start its node first
    (same object store, no `initial_members`): it waits until a map lists it.

        Attributes:
            address (str): `host:port` where other nodes and gateways reach it (the node's `cluster.advertise`).
            id (int): Its node id (the node's `cluster.node_id`), never used before in this cluster.
     """

    address: str
    id: int





    def to_dict(self) -> dict[str, Any]:
        address = self.address

        id = self.id


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "address": address,
            "id": id,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        address = d.pop("address")

        id = d.pop("id")

        new_member = cls(
            address=address,
            id=id,
        )

        return new_member

