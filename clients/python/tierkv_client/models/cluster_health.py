from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.health_state import HealthState
from typing import cast






T = TypeVar("T", bound="ClusterHealth")



@_attrs_define
class ClusterHealth:
    """ Overall health with its reasons.

        Attributes:
            members (int): Members in the map.
            members_up (int): Members answering status polls.
            reasons (list[str]): Why it is not healthy, one sentence each.
            replicas_lagging (int): Replicas that lag their leader, rejoin after disk loss or stopped on a WAL failure.
            shards_without_leader (int): Shards no replica reports as serving leader.
            status (HealthState): Overall health.
     """

    members: int
    members_up: int
    reasons: list[str]
    replicas_lagging: int
    shards_without_leader: int
    status: HealthState
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        members = self.members

        members_up = self.members_up

        reasons = self.reasons



        replicas_lagging = self.replicas_lagging

        shards_without_leader = self.shards_without_leader

        status = self.status.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "members": members,
            "members_up": members_up,
            "reasons": reasons,
            "replicas_lagging": replicas_lagging,
            "shards_without_leader": shards_without_leader,
            "status": status,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        members = d.pop("members")

        members_up = d.pop("members_up")

        reasons = cast(list[str], d.pop("reasons"))


        replicas_lagging = d.pop("replicas_lagging")

        shards_without_leader = d.pop("shards_without_leader")

        status = HealthState(d.pop("status"))




        cluster_health = cls(
            members=members,
            members_up=members_up,
            reasons=reasons,
            replicas_lagging=replicas_lagging,
            shards_without_leader=shards_without_leader,
            status=status,
        )


        cluster_health.additional_properties = d
        return cluster_health

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
