from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.replica_info import ReplicaInfo





T = TypeVar("T", bound="ShardInfo")



@_attrs_define
class ShardInfo:
    """ One shard.

        Attributes:
            replicas (list[ReplicaInfo]): Replicas in rank order (the first is the preferred leader).
            shard (int): Shard id.
            commit_seq (int | None | Unset): Committed seq at the leader: the shard's latest version.
            epoch (int | None | Unset): The leader's epoch (else the highest epoch a replica reports).
            flushed_seq (int | None | Unset): Flushed seq of its latest manifest.
            leader (int | None | Unset): The serving leader (null when none reports serving).
            memtable_bytes (int | None | Unset): Bytes in the leader's active memtable.
            ops_per_sec (float | None | Unset): Client operations per second on the shard (every replica's), over the last
                two
                gatherings; null until there are two.
            segment_bytes (int | None | Unset): Bytes in those segments.
            segments (int | None | Unset): Segments in the leader's view.
            unflushed_bytes (int | None | Unset): Bytes the leader has not flushed.
     """

    replicas: list[ReplicaInfo]
    shard: int
    commit_seq: int | None | Unset = UNSET
    epoch: int | None | Unset = UNSET
    flushed_seq: int | None | Unset = UNSET
    leader: int | None | Unset = UNSET
    memtable_bytes: int | None | Unset = UNSET
    ops_per_sec: float | None | Unset = UNSET
    segment_bytes: int | None | Unset = UNSET
    segments: int | None | Unset = UNSET
    unflushed_bytes: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.replica_info import ReplicaInfo
        replicas = []
        for replicas_item_data in self.replicas:
            replicas_item = replicas_item_data.to_dict()
            replicas.append(replicas_item)



        shard = self.shard

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

        leader: int | None | Unset
        if isinstance(self.leader, Unset):
            leader = UNSET
        else:
            leader = self.leader

        memtable_bytes: int | None | Unset
        if isinstance(self.memtable_bytes, Unset):
            memtable_bytes = UNSET
        else:
            memtable_bytes = self.memtable_bytes

        ops_per_sec: float | None | Unset
        if isinstance(self.ops_per_sec, Unset):
            ops_per_sec = UNSET
        else:
            ops_per_sec = self.ops_per_sec

        segment_bytes: int | None | Unset
        if isinstance(self.segment_bytes, Unset):
            segment_bytes = UNSET
        else:
            segment_bytes = self.segment_bytes

        segments: int | None | Unset
        if isinstance(self.segments, Unset):
            segments = UNSET
        else:
            segments = self.segments

        unflushed_bytes: int | None | Unset
        if isinstance(self.unflushed_bytes, Unset):
            unflushed_bytes = UNSET
        else:
            unflushed_bytes = self.unflushed_bytes


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "replicas": replicas,
            "shard": shard,
        })
        if commit_seq is not UNSET:
            field_dict["commit_seq"] = commit_seq
        if epoch is not UNSET:
            field_dict["epoch"] = epoch
        if flushed_seq is not UNSET:
            field_dict["flushed_seq"] = flushed_seq
        if leader is not UNSET:
            field_dict["leader"] = leader
        if memtable_bytes is not UNSET:
            field_dict["memtable_bytes"] = memtable_bytes
        if ops_per_sec is not UNSET:
            field_dict["ops_per_sec"] = ops_per_sec
        if segment_bytes is not UNSET:
            field_dict["segment_bytes"] = segment_bytes
        if segments is not UNSET:
            field_dict["segments"] = segments
        if unflushed_bytes is not UNSET:
            field_dict["unflushed_bytes"] = unflushed_bytes

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.replica_info import ReplicaInfo
        d = dict(src_dict)
        replicas = []
        _replicas = d.pop("replicas")
        for replicas_item_data in (_replicas):
            replicas_item = ReplicaInfo.from_dict(replicas_item_data)



            replicas.append(replicas_item)


        shard = d.pop("shard")

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


        def _parse_leader(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        leader = _parse_leader(d.pop("leader", UNSET))


        def _parse_memtable_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        memtable_bytes = _parse_memtable_bytes(d.pop("memtable_bytes", UNSET))


        def _parse_ops_per_sec(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        ops_per_sec = _parse_ops_per_sec(d.pop("ops_per_sec", UNSET))


        def _parse_segment_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        segment_bytes = _parse_segment_bytes(d.pop("segment_bytes", UNSET))


        def _parse_segments(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        segments = _parse_segments(d.pop("segments", UNSET))


        def _parse_unflushed_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        unflushed_bytes = _parse_unflushed_bytes(d.pop("unflushed_bytes", UNSET))


        shard_info = cls(
            replicas=replicas,
            shard=shard,
            commit_seq=commit_seq,
            epoch=epoch,
            flushed_seq=flushed_seq,
            leader=leader,
            memtable_bytes=memtable_bytes,
            ops_per_sec=ops_per_sec,
            segment_bytes=segment_bytes,
            segments=segments,
            unflushed_bytes=unflushed_bytes,
        )


        shard_info.additional_properties = d
        return shard_info

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
