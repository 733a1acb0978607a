from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="ReplicaInfo")



@_attrs_define
class ReplicaInfo:
    """ One replica of a shard.

        Attributes:
            node (int): Its node.
            rank (int): Its rank (0: preferred leader).
            applied_seq (int | None | Unset): Highest seq applied to its view (null from nodes that report `Status` only).
            commit_seq (int | None | Unset): Highest seq it knows committed.
            epoch (int | None | Unset): The epoch it promised (a leader's own).
            flushed_seq (int | None | Unset): Its flushed prefix.
            lag (int | None | Unset): Records behind the leader's log end, as the leader counts its acknowledgements (null
                for the leader itself and when the leader did not say).
            last_seq (int | None | Unset): End of its log.
            records_behind (int | None | Unset): Committed records it knows it misses (its own count).
            rejoining (bool | None | Unset): Rejoining after disk loss.
            role (None | str | Unset): `leader`, `recovering`, `candidate`, `follower`; null when its node did not report.
            up (bool | None | Unset): Its node answered the last status poll.
     """

    node: int
    rank: int
    applied_seq: int | None | Unset = UNSET
    commit_seq: int | None | Unset = UNSET
    epoch: int | None | Unset = UNSET
    flushed_seq: int | None | Unset = UNSET
    lag: int | None | Unset = UNSET
    last_seq: int | None | Unset = UNSET
    records_behind: int | None | Unset = UNSET
    rejoining: bool | None | Unset = UNSET
    role: None | str | Unset = UNSET
    up: bool | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        node = self.node

        rank = self.rank

        applied_seq: int | None | Unset
        if isinstance(self.applied_seq, Unset):
            applied_seq = UNSET
        else:
            applied_seq = self.applied_seq

        commit_seq: int | None | Unset
        if isinstance(self.commit_seq, Unset):
            commit_seq = UNSET
        else:
            commit_seq = self.commit_seq

        epoch: int | None | Unset
        if isinstance(self.epoch, Unset):
            epoch = UNSET
        else:
            epoch = self.epoch

        flushed_seq: int | None | Unset
        if isinstance(self.flushed_seq, Unset):
            flushed_seq = UNSET
        else:
            flushed_seq = self.flushed_seq

        lag: int | None | Unset
        if isinstance(self.lag, Unset):
            lag = UNSET
        else:
            lag = self.lag

        last_seq: int | None | Unset
        if isinstance(self.last_seq, Unset):
            last_seq = UNSET
        else:
            last_seq = self.last_seq

        records_behind: int | None | Unset
        if isinstance(self.records_behind, Unset):
            records_behind = UNSET
        else:
            records_behind = self.records_behind

        rejoining: bool | None | Unset
        if isinstance(self.rejoining, Unset):
            rejoining = UNSET
        else:
            rejoining = self.rejoining

        role: None | str | Unset
        if isinstance(self.role, Unset):
            role = UNSET
        else:
            role = self.role

        up: bool | None | Unset
        if isinstance(self.up, Unset):
            up = UNSET
        else:
            up = self.up


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "node": node,
            "rank": rank,
        })
        if applied_seq is not UNSET:
            field_dict["applied_seq"] = applied_seq
        if commit_seq is not UNSET:
            field_dict["commit_seq"] = commit_seq
        if epoch is not UNSET:
            field_dict["epoch"] = epoch
        if flushed_seq is not UNSET:
            field_dict["flushed_seq"] = flushed_seq
        if lag is not UNSET:
            field_dict["lag"] = lag
        if last_seq is not UNSET:
            field_dict["last_seq"] = last_seq
        if records_behind is not UNSET:
            field_dict["records_behind"] = records_behind
        if rejoining is not UNSET:
            field_dict["rejoining"] = rejoining
        if role is not UNSET:
            field_dict["role"] = role
        if up is not UNSET:
            field_dict["up"] = up

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        node = d.pop("node")

        rank = d.pop("rank")

        def _parse_applied_seq(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        applied_seq = _parse_applied_seq(d.pop("applied_seq", UNSET))


        def _parse_commit_seq(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        commit_seq = _parse_commit_seq(d.pop("commit_seq", UNSET))


        def _parse_epoch(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        epoch = _parse_epoch(d.pop("epoch", UNSET))


        def _parse_flushed_seq(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        flushed_seq = _parse_flushed_seq(d.pop("flushed_seq", UNSET))


        def _parse_lag(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        lag = _parse_lag(d.pop("lag", UNSET))


        def _parse_last_seq(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        last_seq = _parse_last_seq(d.pop("last_seq", UNSET))


        def _parse_records_behind(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        records_behind = _parse_records_behind(d.pop("records_behind", UNSET))


        def _parse_rejoining(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        rejoining = _parse_rejoining(d.pop("rejoining", UNSET))


        def _parse_role(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        role = _parse_role(d.pop("role", UNSET))


        def _parse_up(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        up = _parse_up(d.pop("up", UNSET))


        replica_info = cls(
            node=node,
            rank=rank,
            applied_seq=applied_seq,
            commit_seq=commit_seq,
            epoch=epoch,
            flushed_seq=flushed_seq,
            lag=lag,
            last_seq=last_seq,
            records_behind=records_behind,
            rejoining=rejoining,
            role=role,
            up=up,
        )


        replica_info.additional_properties = d
        return replica_info

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
