//! The cluster client as the admin API's [`ClusterView`] (design note 0010): `Describe` to
//! every member at once, each alone on `POST /rpc/v1/kv` (never in a batch: an older node
//! refuses a batch holding an unknown kind whole); a member that refuses it (HTTP 400, an
//! older version) or whose description does not decode is asked for its `Status` instead.
//! Also [`PollLog`]: what the background status polls saw (last heartbeat per member, and
//! `member_down`/`member_up` events).

use std::collections::{HashMap, HashSet, VecDeque};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tierkv_engine::clock::{Clock, SystemClock};
use tierkv_engine::replica::NodeId;
use tierkv_wire::proto::{self, Request, Response};

use super::{ClusterBackend, Shared};
use crate::admin::{
    ClusterView, Facts, FactsGap, GatewayEvent, GatewayEventKind, Gathered, MemberChange,
    MemberFacts,
};
use crate::error::ApiError;
use std::sync::Arc;
use tierkv_wire::shardmap::{self, ShardMap};

/// Gateway events kept.
const EVENTS_KEPT: usize = 256;
/// Longest wait for one node's answer to an admin RPC (a stalled node must not hold the
/// dashboard for the whole `rpc_timeout`).
const ADMIN_RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the status polls saw. One short lock per poll and per gathering.
#[derive(Debug, Default)]
pub(super) struct PollLog {
    inner: parking_lot::Mutex<PollState>,
}

#[derive(Debug, Default)]
struct PollState {
    /// Whether each member answered the last poll.
    up: HashMap<NodeId, bool>,
    /// When each member last answered, unix millis.
    last_seen: HashMap<NodeId, u64>,
    /// Oldest first.
    events: VecDeque<GatewayEvent>,
}

impl PollLog {
    /// Records one poll of `members`, of which `answered` answered.
    pub(super) fn observe(
        &self,
        members: impl Iterator<Item = NodeId>,
        answered: &HashSet<NodeId>,
    ) {
        let now = SystemClock.now_millis();
        let mut st = self.inner.lock();
        for id in members {
            let up = answered.contains(&id);
            if up {
                st.last_seen.insert(id, now);
            }
            let kind = match (st.up.insert(id, up), up) {
                (Some(true), false) | (None, false) => Some(GatewayEventKind::MemberDown),
                (Some(false), true) => Some(GatewayEventKind::MemberUp),
                _ => None,
            };
            if let Some(kind) = kind {
                if st.events.len() == EVENTS_KEPT {
                    st.events.pop_front();
                }
                st.events.push_back(GatewayEvent {
                    at_ms: now,
                    kind,
                    node: id,
                });
            }
        }
    }

    fn read(&self, id: NodeId) -> (Option<bool>, Option<u64>) {
        let st = self.inner.lock();
        (st.up.get(&id).copied(), st.last_seen.get(&id).copied())
    }

    fn events(&self) -> Vec<GatewayEvent> {
        self.inner.lock().events.iter().copied().collect()
    }
}

/// Why a lone RPC gave no answer.
#[derive(Debug)]
enum Alone {
    /// The node refused the request (4xx): 400 is an operation it does not know.
    Refused(StatusCode),
    /// The answer did not decode.
    Undecodable(String),
    /// No answer.
    Failed(String),
}

/// What went wrong with an admin RPC, in a few words (for the dashboard): the kind of
/// failure and its innermost cause, without the URL.
fn brief(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    if e.is_timeout() {
        what.to_owned()
    } else {
        format!("{what}: {root}")
    }
}

impl Shared {
    /// One operation alone on `POST /rpc/v1/kv` to the node at `addr`.
    async fn send_alone(&self, addr: &str, req: &Request) -> Result<Response, Alone> {
        let url = format!(
            "{}://{addr}{}",
            self.opts.tls.scheme(),
            tierkv_wire::paths::KV
        );
        let resp = self
            .http
            .post(url)
            .timeout(ADMIN_RPC_TIMEOUT.min(self.opts.rpc_timeout))
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(proto::encode_request(req))
            .send()
            .await
            .map_err(|e| {
                tracing::debug!(addr, error = %super::rpc::chain(&e), "admin RPC failed");
                Alone::Failed(brief(&e))
            })?;
        let status = resp.status();
        if status.is_client_error() {
            return Err(Alone::Refused(status));
        }
        if status != StatusCode::OK {
            return Err(Alone::Failed(format!("HTTP {status}")));
        }
        let body = resp.bytes().await.map_err(|e| Alone::Failed(brief(&e)))?;
        proto::decode_response(&body).map_err(|e| Alone::Undecodable(e.to_string()))
    }

    /// What member `id` at `addr` says about itself.
    async fn facts(&self, id: NodeId, addr: &str, max_events: u32) -> Facts {
        let gap = match self
            .send_alone(addr, &Request::Describe { max_events })
            .await
        {
            Ok(Response::Described(d)) if d.node == id.0 => return Facts::Described(d),
            Ok(Response::Described(d)) => {
                return Facts::Unreachable {
                    error: format!("its address answers as node {}", d.node),
                };
            }
            Ok(Response::Error(e)) => {
                return Facts::Unreachable {
                    error: e.to_string(),
                };
            }
            Ok(_) => FactsGap::Invalid("the answer to Describe is of another kind".to_owned()),
            Err(Alone::Refused(StatusCode::BAD_REQUEST)) => FactsGap::Unsupported,
            Err(Alone::Refused(s)) => {
                return Facts::Unreachable {
                    error: format!("it refused the request (HTTP {s})"),
                };
            }
            Err(Alone::Undecodable(why)) => {
                tracing::warn!(node = %id, why, "a node's description does not decode");
                FactsGap::Invalid(format!("its description does not decode: {why}"))
            }
            Err(Alone::Failed(error)) => return Facts::Unreachable { error },
        };
        match self.send_alone(addr, &Request::Status).await {
            Ok(Response::Status(status)) if status.node == id => Facts::StatusOnly { status, gap },
            Ok(_) => Facts::Unreachable {
                error: "unexpected answer to Status".to_owned(),
            },
            Err(Alone::Refused(s)) => Facts::Unreachable {
                error: format!("it refused the request (HTTP {s})"),
            },
            Err(Alone::Undecodable(e) | Alone::Failed(e)) => Facts::Unreachable { error: e },
        }
    }
}

#[async_trait]
impl ClusterView for ClusterBackend {
    async fn gather(&self, max_events: u32) -> Gathered {
        let shared = &self.shared;
        let map = shared.map();
        let facts = futures::future::join_all(
            map.members()
                .iter()
                .map(|m| shared.facts(m.id, shared.dial(m), max_events)),
        )
        .await;
        let members = map
            .members()
            .iter()
            .zip(facts)
            .map(|(m, facts)| {
                let (answering, last_seen_ms) = shared.polls.read(m.id);
                MemberFacts {
                    id: m.id,
                    addr: m.addr.clone(),
                    answering,
                    last_seen_ms,
                    facts,
                }
            })
            .collect();
        Gathered {
            map,
            members,
            events: shared.polls.events(),
        }
    }

    async fn change_members(&self, change: MemberChange) -> Result<Arc<ShardMap>, ApiError> {
        let shared = &self.shared;
        let seen = shared.map().version();
        let next = shardmap::change_members(&shared.store, |m| change.apply(m))
            .await
            .map_err(ApiError::from_shard_map)?;
        // Adopt it now: the next gathering and `GET /admin/v1/moves` see the new targets.
        shared.refresh_map(seen).await;
        Ok(Arc::new(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_record_heartbeats_and_transitions() {
        let log = PollLog::default();
        let members = || [NodeId(1), NodeId(2)].into_iter();
        log.observe(members(), &HashSet::from([NodeId(1), NodeId(2)]));
        assert!(
            log.events().is_empty(),
            "members up at the first poll are no event"
        );
        assert_eq!(log.read(NodeId(1)).0, Some(true));
        let seen = log.read(NodeId(2)).1.expect("seen");
        log.observe(members(), &HashSet::from([NodeId(1)]));
        log.observe(members(), &HashSet::from([NodeId(1)]));
        log.observe(members(), &HashSet::from([NodeId(1), NodeId(2)]));
        let kinds: Vec<_> = log.events().iter().map(|e| (e.kind, e.node)).collect();
        assert_eq!(
            kinds,
            vec![
                (GatewayEventKind::MemberDown, NodeId(2)),
                (GatewayEventKind::MemberUp, NodeId(2))
            ]
        );
        assert!(log.read(NodeId(2)).1.expect("seen") >= seen);
        assert_eq!(log.read(NodeId(3)), (None, None));
    }
}
