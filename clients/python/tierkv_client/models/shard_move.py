from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="ShardMove")



@_attrs_define
class ShardMove:
    """ One shard's move.

        Attributes:
            bytes_behind (int): Bytes of the log tail its learners still have to receive (summed).
            current (list[list[int]]): The configuration in force at the leader: one voter set, or two (old, new) during
                the joint step (empty: unknown).
            moving (bool): Whether it still moves.
            phase (str): `done`, `learning`, `joint`, `final`, `releasing`, or `unknown` (no leader reported).
            records_behind (int): Records its learners are behind the leader's commit point (summed).
            shard (int): The shard.
            target (list[int]): The replica set the newest map places it on.
            leader (int | None | Unset): Its serving leader (null: none reported).
     """

    bytes_behind: int
    current: list[list[int]]
    moving: bool
    phase: str
    records_behind: int
    shard: int
    target: list[int]
    leader: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        bytes_behind = self.bytes_behind

        current = []
        for current_item_data in self.current:
            current_item = current_item_data


            current.append(current_item)



        moving = self.moving

        phase = self.phase

        records_behind = self.records_behind

        shard = self.shard

        target = self.target



        leader: int | None | Unset
        if isinstance(self.leader, Unset):
            leader = UNSET
        else:
            leader = self.leader


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "bytes_behind": bytes_behind,
            "current": current,
            "moving": moving,
            "phase": phase,
            "records_behind": records_behind,
            "shard": shard,
            "target": target,
        })
        if leader is not UNSET:
            field_dict["leader"] = leader

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bytes_behind = d.pop("bytes_behind")

        current = []
        _current = d.pop("current")
        for current_item_data in (_current):
            current_item = cast(list[int], current_item_data)

            current.append(current_item)


        moving = d.pop("moving")

        phase = d.pop("phase")

        records_behind = d.pop("records_behind")

        shard = d.pop("shard")

        target = cast(list[int], d.pop("target"))


        def _parse_leader(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        leader = _parse_leader(d.pop("leader", UNSET))


        shard_move = cls(
            bytes_behind=bytes_behind,
            current=current,
            moving=moving,
            phase=phase,
            records_behind=records_behind,
            shard=shard,
            target=target,
            leader=leader,
        )


        shard_move.additional_properties = d
        return shard_move

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
