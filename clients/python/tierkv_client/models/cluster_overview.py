from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.cluster_health import ClusterHealth
  from ..models.gateway_info import GatewayInfo
  from ..models.map_info import MapInfo
  from ..models.member_summary import MemberSummary
  from ..models.role_counts import RoleCounts





T = TypeVar("T", bound="ClusterOverview")



@_attrs_define
class ClusterOverview:
    """ `GET /admin/v1/cluster`.

        Attributes:
            gateway (GatewayInfo): The gateway answering.
            health (ClusterHealth): Overall health with its reasons.
            map_ (MapInfo): The shard map.
            members (list[MemberSummary]): Every member, in the map's order.
            roles (RoleCounts): Replica roles summed over every shard.
     """

    gateway: GatewayInfo
    health: ClusterHealth
    map_: MapInfo
    members: list[MemberSummary]
    roles: RoleCounts
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.map_info import MapInfo
        from ..models.role_counts import RoleCounts
        from ..models.member_summary import MemberSummary
        from ..models.cluster_health import ClusterHealth
        from ..models.gateway_info import GatewayInfo
        gateway = self.gateway.to_dict()

        health = self.health.to_dict()

        map_ = self.map_.to_dict()

        members = []
        for members_item_data in self.members:
            members_item = members_item_data.to_dict()
            members.append(members_item)



        roles = self.roles.to_dict()


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "gateway": gateway,
            "health": health,
            "map": map_,
            "members": members,
            "roles": roles,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.cluster_health import ClusterHealth
        from ..models.gateway_info import GatewayInfo
        from ..models.map_info import MapInfo
        from ..models.member_summary import MemberSummary
        from ..models.role_counts import RoleCounts
        d = dict(src_dict)
        gateway = GatewayInfo.from_dict(d.pop("gateway"))




        health = ClusterHealth.from_dict(d.pop("health"))




        map_ = MapInfo.from_dict(d.pop("map"))




        members = []
        _members = d.pop("members")
        for members_item_data in (_members):
            members_item = MemberSummary.from_dict(members_item_data)



            members.append(members_item)


        roles = RoleCounts.from_dict(d.pop("roles"))




        cluster_overview = cls(
            gateway=gateway,
            health=health,
            map_=map_,
            members=members,
            roles=roles,
        )


        cluster_overview.additional_properties = d
        return cluster_overview

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
