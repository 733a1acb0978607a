from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="TrafficPoint")



@_attrs_define
class TrafficPoint:
    """ One interval of traffic.

        Attributes:
            at_ms (int): End of the interval, unix milliseconds.
            client_errors_per_sec (float): 4xx answers per second.
            requests_per_sec (float): Requests answered per second.
            server_errors_per_sec (float): 5xx answers per second.
            p50_ms (float | None | Unset): Median latency, milliseconds (null without requests).
            p99_ms (float | None | Unset): 99th percentile latency, milliseconds (null without requests).
     """

    at_ms: int
    client_errors_per_sec: float
    requests_per_sec: float
    server_errors_per_sec: float
    p50_ms: float | None | Unset = UNSET
    p99_ms: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        at_ms = self.at_ms

        client_errors_per_sec = self.client_errors_per_sec

        requests_per_sec = self.requests_per_sec

        server_errors_per_sec = self.server_errors_per_sec

        p50_ms: float | None | Unset
        if isinstance(self.p50_ms, Unset):
            p50_ms = UNSET
        else:
            p50_ms = self.p50_ms

        p99_ms: float | None | Unset
        if isinstance(self.p99_ms, Unset):
            p99_ms = UNSET
        else:
            p99_ms = self.p99_ms


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "at_ms": at_ms,
            "client_errors_per_sec": client_errors_per_sec,
            "requests_per_sec": requests_per_sec,
            "server_errors_per_sec": server_errors_per_sec,
        })
        if p50_ms is not UNSET:
            field_dict["p50_ms"] = p50_ms
        if p99_ms is not UNSET:
            field_dict["p99_ms"] = p99_ms

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        at_ms = d.pop("at_ms")

        client_errors_per_sec = d.pop("client_errors_per_sec")

        requests_per_sec = d.pop("requests_per_sec")

        server_errors_per_sec = d.pop("server_errors_per_sec")

        def _parse_p50_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        p50_ms = _parse_p50_ms(d.pop("p50_ms", UNSET))


        def _parse_p99_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        p99_ms = _parse_p99_ms(d.pop("p99_ms", UNSET))


        traffic_point = cls(
            at_ms=at_ms,
            client_errors_per_sec=client_errors_per_sec,
            requests_per_sec=requests_per_sec,
            server_errors_per_sec=server_errors_per_sec,
            p50_ms=p50_ms,
            p99_ms=p99_ms,
        )


        traffic_point.additional_properties = d
        return traffic_point

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
