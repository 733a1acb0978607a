from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="RoleCounts")



@_attrs_define
class RoleCounts:
    """ Replica roles summed over every shard.

        Attributes:
            candidate (int): Replicas taking over.
            follower (int): Followers.
            leader (int): Serving leaders.
            recovering (int): Leaders not serving yet.
            unknown (int): Replicas of members that did not report.
     """

    candidate: int
    follower: int
    leader: int
    recovering: int
    unknown: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        candidate = self.candidate

        follower = self.follower

        leader = self.leader

        recovering = self.recovering

        unknown = self.unknown


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "candidate": candidate,
            "follower": follower,
            "leader": leader,
            "recovering": recovering,
            "unknown": unknown,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        candidate = d.pop("candidate")

        follower = d.pop("follower")

        leader = d.pop("leader")

        recovering = d.pop("recovering")

        unknown = d.pop("unknown")

        role_counts = cls(
            candidate=candidate,
            follower=follower,
            leader=leader,
            recovering=recovering,
            unknown=unknown,
        )


        role_counts.additional_properties = d
        return role_counts

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
