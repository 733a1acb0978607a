from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.traffic_point import TrafficPoint





T = TypeVar("T", bound="Traffic")



@_attrs_define
class Traffic:
    """ `GET /admin/v1/traffic`: this gateway's `/v1/` requests.

        Attributes:
            interval_secs (int): Seconds between points.
            points (list[TrafficPoint]): Oldest first.
            window_secs (int): Seconds of history kept.
     """

    interval_secs: int
    points: list[TrafficPoint]
    window_secs: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.traffic_point import TrafficPoint
        interval_secs = self.interval_secs

        points = []
        for points_item_data in self.points:
            points_item = points_item_data.to_dict()
            points.append(points_item)



        window_secs = self.window_secs


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "interval_secs": interval_secs,
            "points": points,
            "window_secs": window_secs,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.traffic_point import TrafficPoint
        d = dict(src_dict)
        interval_secs = d.pop("interval_secs")

        points = []
        _points = d.pop("points")
        for points_item_data in (_points):
            points_item = TrafficPoint.from_dict(points_item_data)



            points.append(points_item)


        window_secs = d.pop("window_secs")

        traffic = cls(
            interval_secs=interval_secs,
            points=points,
            window_secs=window_secs,
        )


        traffic.additional_properties = d
        return traffic

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
