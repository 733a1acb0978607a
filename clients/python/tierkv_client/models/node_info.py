from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.facts_state import FactsState
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.cache_ratio import CacheRatio





T = TypeVar("T", bound="NodeInfo")



@_attrs_define
class NodeInfo:
    """ One node in detail.

        Attributes:
            addr (str): Address in the shard map.
            facts (FactsState): Whether what a node said about itself is complete.
            id (int): Node id.
            block_cache (CacheRatio | None | Unset):
            facts_detail (None | str | Unset): Why not, when they are not.
            last_heartbeat_ms (int | None | Unset): When it last answered a status poll, unix milliseconds (the gateway's
                clock).
            map_version (int | None | Unset): The shard map version it runs under.
            memtable_bytes (int | None | Unset): Bytes in its active memtables.
            ops_per_sec (float | None | Unset): Client operations per second it served, over the last two gatherings (null
                until
                there are two).
            rejoining (int | None | Unset): Its replicas rejoining after disk loss.
            segment_bytes (int | None | Unset): Bytes in those segments.
            segments (int | None | Unset): Segments in its replicas' views.
            shards_followed (int | None | Unset): Shards it follows.
            shards_hosted (int | None | Unset): Shards it hosts.
            shards_led (int | None | Unset): Shards it leads (serving).
            started_at_ms (int | None | Unset): When it started, unix milliseconds (its clock).
            unflushed_bytes (int | None | Unset): Bytes it has not flushed to object storage.
            up (bool | None | Unset): Whether it answered the last status poll (null before the first poll).
            version (None | str | Unset): Its software version.
            wal_bytes (int | None | Unset): Bytes in its WAL files.
            wal_files (int | None | Unset): Its WAL files.
            wal_poisoned (bool | None | Unset): Whether its WAL failed (it must restart).
     """

    addr: str
    facts: FactsState
    id: int
    block_cache: CacheRatio | None | Unset = UNSET
    facts_detail: None | str | Unset = UNSET
    last_heartbeat_ms: int | None | Unset = UNSET
    map_version: int | None | Unset = UNSET
    memtable_bytes: int | None | Unset = UNSET
    ops_per_sec: float | None | Unset = UNSET
    rejoining: int | None | Unset = UNSET
    segment_bytes: int | None | Unset = UNSET
    segments: int | None | Unset = UNSET
    shards_followed: int | None | Unset = UNSET
    shards_hosted: int | None | Unset = UNSET
    shards_led: int | None | Unset = UNSET
    started_at_ms: int | None | Unset = UNSET
    unflushed_bytes: int | None | Unset = UNSET
    up: bool | None | Unset = UNSET
    version: None | str | Unset = UNSET
    wal_bytes: int | None | Unset = UNSET
    wal_files: int | None | Unset = UNSET
    wal_poisoned: bool | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.cache_ratio import CacheRatio
        addr = self.addr

        facts = self.facts.value

        id = self.id

        block_cache: dict[str, Any] | None | Unset
        if isinstance(self.block_cache, Unset):
            block_cache = UNSET
        elif isinstance(self.block_cache, CacheRatio):
            block_cache = self.block_cache.to_dict()
        else:
            block_cache = self.block_cache

        facts_detail: None | str | Unset
        if isinstance(self.facts_detail, Unset):
            facts_detail = UNSET
        else:
            facts_detail = self.facts_detail

        last_heartbeat_ms: int | None | Unset
        if isinstance(self.last_heartbeat_ms, Unset):
            last_heartbeat_ms = UNSET
        else:
            last_heartbeat_ms = self.last_heartbeat_ms

        map_version: int | None | Unset
        if isinstance(self.map_version, Unset):
            map_version = UNSET
        else:
            map_version = self.map_version

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

        rejoining: int | None | Unset
        if isinstance(self.rejoining, Unset):
            rejoining = UNSET
        else:
            rejoining = self.rejoining

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

        shards_followed: int | None | Unset
        if isinstance(self.shards_followed, Unset):
            shards_followed = UNSET
        else:
            shards_followed = self.shards_followed

        shards_hosted: int | None | Unset
        if isinstance(self.shards_hosted, Unset):
            shards_hosted = UNSET
        else:
            shards_hosted = self.shards_hosted

        shards_led: int | None | Unset
        if isinstance(self.shards_led, Unset):
            shards_led = UNSET
        else:
            shards_led = self.shards_led

        started_at_ms: int | None | Unset
        if isinstance(self.started_at_ms, Unset):
            started_at_ms = UNSET
        else:
            started_at_ms = self.started_at_ms

        unflushed_bytes: int | None | Unset
        if isinstance(self.unflushed_bytes, Unset):
            unflushed_bytes = UNSET
        else:
            unflushed_bytes = self.unflushed_bytes

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

        wal_bytes: int | None | Unset
        if isinstance(self.wal_bytes, Unset):
            wal_bytes = UNSET
        else:
            wal_bytes = self.wal_bytes

        wal_files: int | None | Unset
        if isinstance(self.wal_files, Unset):
            wal_files = UNSET
        else:
            wal_files = self.wal_files

        wal_poisoned: bool | None | Unset
        if isinstance(self.wal_poisoned, Unset):
            wal_poisoned = UNSET
        else:
            wal_poisoned = self.wal_poisoned


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "addr": addr,
            "facts": facts,
            "id": id,
        })
        if block_cache is not UNSET:
            field_dict["block_cache"] = block_cache
        if facts_detail is not UNSET:
            field_dict["facts_detail"] = facts_detail
        if last_heartbeat_ms is not UNSET:
            field_dict["last_heartbeat_ms"] = last_heartbeat_ms
        if map_version is not UNSET:
            field_dict["map_version"] = map_version
        if memtable_bytes is not UNSET:
            field_dict["memtable_bytes"] = memtable_bytes
        if ops_per_sec is not UNSET:
            field_dict["ops_per_sec"] = ops_per_sec
        if rejoining is not UNSET:
            field_dict["rejoining"] = rejoining
        if segment_bytes is not UNSET:
            field_dict["segment_bytes"] = segment_bytes
        if segments is not UNSET:
            field_dict["segments"] = segments
        if shards_followed is not UNSET:
            field_dict["shards_followed"] = shards_followed
        if shards_hosted is not UNSET:
            field_dict["shards_hosted"] = shards_hosted
        if shards_led is not UNSET:
            field_dict["shards_led"] = shards_led
        if started_at_ms is not UNSET:
            field_dict["started_at_ms"] = started_at_ms
        if unflushed_bytes is not UNSET:
            field_dict["unflushed_bytes"] = unflushed_bytes
        if up is not UNSET:
            field_dict["up"] = up
        if version is not UNSET:
            field_dict["version"] = version
        if wal_bytes is not UNSET:
            field_dict["wal_bytes"] = wal_bytes
        if wal_files is not UNSET:
            field_dict["wal_files"] = wal_files
        if wal_poisoned is not UNSET:
            field_dict["wal_poisoned"] = wal_poisoned

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.cache_ratio import CacheRatio
        d = dict(src_dict)
        addr = d.pop("addr")

        facts = FactsState(d.pop("facts"))




        id = d.pop("id")

        def _parse_block_cache(data: object) -> CacheRatio | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                block_cache_type_0 = CacheRatio.from_dict(data)



                return block_cache_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(CacheRatio | None | Unset, data)

        block_cache = _parse_block_cache(d.pop("block_cache", UNSET))


        def _parse_facts_detail(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        facts_detail = _parse_facts_detail(d.pop("facts_detail", UNSET))


        def _parse_last_heartbeat_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        last_heartbeat_ms = _parse_last_heartbeat_ms(d.pop("last_heartbeat_ms", UNSET))


        def _parse_map_version(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        map_version = _parse_map_version(d.pop("map_version", UNSET))


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


        def _parse_rejoining(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        rejoining = _parse_rejoining(d.pop("rejoining", UNSET))


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


        def _parse_shards_followed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        shards_followed = _parse_shards_followed(d.pop("shards_followed", UNSET))


        def _parse_shards_hosted(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        shards_hosted = _parse_shards_hosted(d.pop("shards_hosted", UNSET))


        def _parse_shards_led(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        shards_led = _parse_shards_led(d.pop("shards_led", UNSET))


        def _parse_started_at_ms(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        started_at_ms = _parse_started_at_ms(d.pop("started_at_ms", UNSET))


        def _parse_unflushed_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        unflushed_bytes = _parse_unflushed_bytes(d.pop("unflushed_bytes", UNSET))


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


        def _parse_wal_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        wal_bytes = _parse_wal_bytes(d.pop("wal_bytes", UNSET))


        def _parse_wal_files(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        wal_files = _parse_wal_files(d.pop("wal_files", UNSET))


        def _parse_wal_poisoned(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        wal_poisoned = _parse_wal_poisoned(d.pop("wal_poisoned", UNSET))


        node_info = cls(
            addr=addr,
            facts=facts,
            id=id,
            block_cache=block_cache,
            facts_detail=facts_detail,
            last_heartbeat_ms=last_heartbeat_ms,
            map_version=map_version,
            memtable_bytes=memtable_bytes,
            ops_per_sec=ops_per_sec,
            rejoining=rejoining,
            segment_bytes=segment_bytes,
            segments=segments,
            shards_followed=shards_followed,
            shards_hosted=shards_hosted,
            shards_led=shards_led,
            started_at_ms=started_at_ms,
            unflushed_bytes=unflushed_bytes,
            up=up,
            version=version,
            wal_bytes=wal_bytes,
            wal_files=wal_files,
            wal_poisoned=wal_poisoned,
        )


        node_info.additional_properties = d
        return node_info

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
