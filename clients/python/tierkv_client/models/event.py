from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.event_source import EventSource
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="Event")



@_attrs_define
class Event:
    """ Something that happened.

        Attributes:
            at_ms (int): When, unix milliseconds (the source's clock).
            kind (str): `node_started`, `became_leader`, `stepped_down`, `handed_over`, `wal_failed`
                (nodes); `member_down`, `member_up` (gateway). More may be added.
            message (str): The event in one sentence.
            node (int): The node that reported it, or (gateway events) the node it is about.
            source (EventSource): Who reported an event.
            epoch (int | None | Unset): The epoch, for leadership events.
            peer (int | None | Unset): The other node involved: previous leader, known leader, handover target.
            shard (int | None | Unset): The shard, for shard events.
     """

    at_ms: int
    kind: str
    message: str
    node: int
    source: EventSource
    epoch: int | None | Unset = UNSET
    peer: int | None | Unset = UNSET
    shard: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        at_ms = self.at_ms

        kind = self.kind

        message = self.message

        node = self.node

        source = self.source.value

        epoch: int | None | Unset
        if isinstance(self.epoch, Unset):
            epoch = UNSET
        else:
            epoch = self.epoch

        peer: int | None | Unset
        if isinstance(self.peer, Unset):
            peer = UNSET
        else:
            peer = self.peer

        shard: int | None | Unset
        if isinstance(self.shard, Unset):
            shard = UNSET
        else:
            shard = self.shard


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "at_ms": at_ms,
            "kind": kind,
            "message": message,
            "node": node,
            "source": source,
        })
        if epoch is not UNSET:
            field_dict["epoch"] = epoch
        if peer is not UNSET:
            field_dict["peer"] = peer
        if shard is not UNSET:
            field_dict["shard"] = shard

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        at_ms = d.pop("at_ms")

        kind = d.pop("kind")

        message = d.pop("message")

        node = d.pop("node")

        source = EventSource(d.pop("source"))




        def _parse_epoch(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        epoch = _parse_epoch(d.pop("epoch", UNSET))


        def _parse_peer(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        peer = _parse_peer(d.pop("peer", UNSET))


        def _parse_shard(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        shard = _parse_shard(d.pop("shard", UNSET))


        event = cls(
            at_ms=at_ms,
            kind=kind,
            message=message,
            node=node,
            source=source,
            epoch=epoch,
            peer=peer,
            shard=shard,
        )


        event.additional_properties = d
        return event

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
