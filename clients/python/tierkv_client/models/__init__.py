""" Contains all the data models used in inputs/outputs """

from .batch_item import BatchItem
from .batch_op import BatchOp
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .cache_ratio import CacheRatio
from .cache_tier import CacheTier
from .cluster_health import ClusterHealth
from .cluster_overview import ClusterOverview
from .create_key import CreateKey
from .created_key import CreatedKey
from .encoding import Encoding
from .error_code import ErrorCode
from .event import Event
from .event_list import EventList
from .event_source import EventSource
from .facts_state import FactsState
from .gateway_info import GatewayInfo
from .get_kv_read_type_0 import GetKvReadType0
from .get_kv_read_type_0_consistency import GetKvReadType0Consistency
from .get_kv_read_type_1 import GetKvReadType1
from .get_kv_read_type_1_consistency import GetKvReadType1Consistency
from .get_kv_read_type_2 import GetKvReadType2
from .get_kv_read_type_2_consistency import GetKvReadType2Consistency
from .health import Health
from .health_state import HealthState
from .hot_key import HotKey
from .hot_keys import HotKeys
from .item_error import ItemError
from .item_result import ItemResult
from .key_info import KeyInfo
from .key_list import KeyList
from .list_consistency import ListConsistency
from .list_item import ListItem
from .list_page import ListPage
from .map_info import MapInfo
from .member_entry import MemberEntry
from .member_state_name import MemberStateName
from .member_summary import MemberSummary
from .membership_change import MembershipChange
from .moves import Moves
from .new_member import NewMember
from .node_info import NodeInfo
from .node_list import NodeList
from .problem import Problem
from .put_kv_expiry_type_0 import PutKvExpiryType0
from .put_kv_expiry_type_1 import PutKvExpiryType1
from .replica_info import ReplicaInfo
from .role import Role
from .role_counts import RoleCounts
from .session import Session
from .shard_info import ShardInfo
from .shard_list import ShardList
from .shard_move import ShardMove
from .sign_in_type_0 import SignInType0
from .sign_in_type_1 import SignInType1
from .star import Star
from .traffic import Traffic
from .traffic_point import TrafficPoint
from .write_result import WriteResult

__all__ = (
    "BatchItem",
    "BatchOp",
    "BatchRequest",
    "BatchResponse",
    "CacheRatio",
    "CacheTier",
    "ClusterHealth",
    "ClusterOverview",
    "CreatedKey",
    "CreateKey",
    "Encoding",
    "ErrorCode",
    "Event",
    "EventList",
    "EventSource",
    "FactsState",
    "GatewayInfo",
    "GetKvReadType0",
    "GetKvReadType0Consistency",
    "GetKvReadType1",
    "GetKvReadType1Consistency",
    "GetKvReadType2",
    "GetKvReadType2Consistency",
    "Health",
    "HealthState",
    "HotKey",
    "HotKeys",
    "ItemError",
    "ItemResult",
    "KeyInfo",
    "KeyList",
    "ListConsistency",
    "ListItem",
    "ListPage",
    "MapInfo",
    "MemberEntry",
    "MembershipChange",
    "MemberStateName",
    "MemberSummary",
    "Moves",
    "NewMember",
    "NodeInfo",
    "NodeList",
    "Problem",
    "PutKvExpiryType0",
    "PutKvExpiryType1",
    "ReplicaInfo",
    "Role",
    "RoleCounts",
    "Session",
    "ShardInfo",
    "ShardList",
    "ShardMove",
    "SignInType0",
    "SignInType1",
    "Star",
    "Traffic",
    "TrafficPoint",
    "WriteResult",
)
