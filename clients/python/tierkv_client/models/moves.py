from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.shard_move import ShardMove





T = TypeVar("T", bound="Moves")



@_attrs_define
class Moves:
    """ `GET /admin/v1/moves`: every shard's move toward the newest map's placement.

        Attributes:
            map_version (int): The shard map version the targets come from.
            progress (float): Done fraction of those, 0..=1 (1 when nothing moves).
            shards (list[ShardMove]): Every shard, in order.
            shards_moving (int): Shards whose configuration is not their target yet. A shard whose leader did not
                report counts as this gateway last saw it under the same map version (settled after
                a failover stays settled), and as moving when it never saw it settled.
            shards_to_move (int): Shards that had to move since the cluster was last settled (the largest number seen
                moving since then, by this gateway).
            shards_total (int): Shards of the keyspace.
            shards_unreported (int): Shards whose serving leader did not report (a failover in progress, a member
                unreachable): their `phase` is `unknown` and `leader` null.
            eta_secs (int | None | Unset): Estimated seconds until every move is done, from the completion rate of the last
                minute (null when nothing completed lately, or nothing moves).
     """

    map_version: int
    progress: float
    shards: list[ShardMove]
    shards_moving: int
    shards_to_move: int
    shards_total: int
    shards_unreported: int
    eta_secs: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.shard_move import ShardMove
        map_version = self.map_version

        progress = self.progress

        shards = []
        for shards_item_data in self.shards:
            shards_item = shards_item_data.to_dict()
            shards.append(shards_item)



        shards_moving = self.shards_moving

        shards_to_move = self.shards_to_move

        shards_total = self.shards_total

        shards_unreported = self.shards_unreported

        eta_secs: int | None | Unset
        if isinstance(self.eta_secs, Unset):
            eta_secs = UNSET
        else:
            eta_secs = self.eta_secs


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "map_version": map_version,
            "progress": progress,
            "shards": shards,
            "shards_moving": shards_moving,
            "shards_to_move": shards_to_move,
            "shards_total": shards_total,
            "shards_unreported": shards_unreported,
        })
        if eta_secs is not UNSET:
            field_dict["eta_secs"] = eta_secs

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.shard_move import ShardMove
        d = dict(src_dict)
        map_version = d.pop("map_version")

        progress = d.pop("progress")

        shards = []
        _shards = d.pop("shards")
        for shards_item_data in (_shards):
            shards_item = ShardMove.from_dict(shards_item_data)



            shards.append(shards_item)


        shards_moving = d.pop("shards_moving")

        shards_to_move = d.pop("shards_to_move")

        shards_total = d.pop("shards_total")

        shards_unreported = d.pop("shards_unreported")

        def _parse_eta_secs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        eta_secs = _parse_eta_secs(d.pop("eta_secs", UNSET))


        moves = cls(
            map_version=map_version,
            progress=progress,
            shards=shards,
            shards_moving=shards_moving,
            shards_to_move=shards_to_move,
            shards_total=shards_total,
            shards_unreported=shards_unreported,
            eta_secs=eta_secs,
        )


        moves.additional_properties = d
        return moves

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
