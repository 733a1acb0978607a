from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.facts_state import FactsState
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="MemberSummary")



@_attrs_define
class MemberSummary:
    """ One member in the overview.

        Attributes:
            addr (str): Address in the shard map.
            facts (FactsState): Whether what a node said about itself is complete.
            id (int): Node id.
            facts_detail (None | str | Unset): Why not, when they are not.
            followers (int | None | Unset): Shards it follows.
            last_heartbeat_ms (int | None | Unset): When it last answered a status poll, unix milliseconds (the gateway's
                clock).
            leaders (int | None | Unset): Shards it leads (serving).
            up (bool | None | Unset): Whether it answered the last status poll (null before the first poll).
            version (None | str | Unset): Its software version (null unless it answered `Describe`).
     """

    addr: str
    facts: FactsState
    id: int
    facts_detail: None | str | Unset = UNSET
    followers: int | None | Unset = UNSET
    last_heartbeat_ms: int | None | Unset = UNSET
    leaders: int | None | Unset = UNSET
    up: bool | None | Unset = UNSET
    version: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        addr = self.addr

        facts = self.facts.value

        id = self.id

        facts_detail: None | str | Unset
        if isinstance(self.facts_detail, Unset):
            facts_detail = UNSET
        else:
            facts_detail = self.facts_detail

        followers: int | None | Unset
        if isinstance(self.followers, Unset):
            followers = UNSET
        else:
            followers = self.followers

        last_heartbeat_ms: int | None | Unset
        if isinstance(self.last_heartbeat_ms, Unset):
            last_heartbeat_ms = UNSET
        else:
            last_heartbeat_ms = self.last_heartbeat_ms

        leaders: int | None | Unset
        if isinstance(self.leaders, Unset):
            leaders = UNSET
        else:
            leaders = self.leaders

        up: bool | None | Unset
        if isinstance(self.up, Unset):
            up = UNSET
        else:
            up = self.up

        version: None | str | Unset
        if isinstance(self.version, Unset):
            version = UNSET
        else:
            version = self.version


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "addr": addr,
            "facts": facts,
            "id": id,
        })
        if facts_detail is not UNSET:
            field_dict["facts_detail"] = facts_detail
        if followers is not UNSET:
            field_dict["followers"] = followers
        if last_heartbeat_ms is not UNSET:
            field_dict["last_heartbeat_ms"] = last_heartbeat_ms
        if leaders is not UNSET:
            field_dict["leaders"] = leaders
        if up is not UNSET:
            field_dict["up"] = up
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        addr = d.pop("addr")

        facts = FactsState(d.pop("facts"))




        id = d.pop("id")

        def _parse_facts_detail(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        facts_detail = _parse_facts_detail(d.pop("facts_detail", UNSET))


        def _parse_followers(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        followers = _parse_followers(d.pop("followers", UNSET))


        def _parse_last_heartbeat_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        last_heartbeat_ms = _parse_last_heartbeat_ms(d.pop("last_heartbeat_ms", UNSET))


        def _parse_leaders(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        leaders = _parse_leaders(d.pop("leaders", UNSET))


        def _parse_up(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        up = _parse_up(d.pop("up", UNSET))


        def _parse_version(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        version = _parse_version(d.pop("version", UNSET))


        member_summary = cls(
            addr=addr,
            facts=facts,
            id=id,
            facts_detail=facts_detail,
            followers=followers,
            last_heartbeat_ms=last_heartbeat_ms,
            leaders=leaders,
            up=up,
            version=version,
        )


        member_summary.additional_properties = d
        return member_summary

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
