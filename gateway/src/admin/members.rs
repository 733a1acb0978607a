//! Membership operations (design note 0009 §6; the `membership` tag of `openapi.yaml`):
//! add, drain, remove and replace members, and follow the moves they cause. Same
//! authorization as the rest of the admin API. Each operation first checks the change
//! against the gateway's map (states, ids, the active count), then what the map cannot say
//! (every member speaks wire revision 5; a removed member hosts nothing; one replacement at
//! a time), then publishes the
//! next map version through [`ClusterView::change_members`]. A refusal changes nothing and
//! has a stable code (`member_not_found`, `member_exists`, `member_state`,
//! `too_few_members`, `member_not_empty`, `members_outdated`, `membership_unsupported`).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tierkv_engine::types::NodeId;
use tierkv_wire::proto::REVISION_CONFIGURATIONS;
use tierkv_wire::shardmap::{MemberState, ShardMap};

use super::handlers::{Admin, json};
use super::model::{MemberEntry, MemberStateName, MembershipChange, NewMember};
use super::view::{Facts, FactsGap, Gathered, MemberChange};
use crate::error::{ApiError, MembershipRefusal};
use crate::extract::{self, AppQuery, NoQuery, RawBody};
use crate::state::AppState;

/// The `{id}` of a `/admin/v1/members/{id}` route: a node id, 1..=4294967295.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberId(NodeId);

impl FromRequestParts<AppState> for MemberId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(format!("bad member id: {e}")))?;
        node_id(raw.parse::<u64>().ok())
            .map(Self)
            .ok_or_else(|| ApiError::invalid("a member id is an integer in 1..=4294967295"))
    }
}

fn node_id(v: Option<u64>) -> Option<NodeId> {
    v.and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .map(NodeId)
}

/// Whether `addr` is a `host:port` a node can advertise: a host of letters, digits, dots and
/// dashes (1..=253), a port 1..=65535.
fn valid_addr(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host_ok = (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    host_ok && port_ok
}

/// A JSON [`NewMember`] body, validated.
fn new_member(headers: &HeaderMap, body: &[u8]) -> Result<(NodeId, String), ApiError> {
    let is_json = extract::header_str(headers, &header::CONTENT_TYPE)?
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let m: NewMember = extract::parse_json(body)?;
    let id = node_id(Some(m.id))
        .ok_or_else(|| ApiError::invalid("`id` must be an integer in 1..=4294967295"))?;
    if !valid_addr(&m.address) {
        return Err(ApiError::invalid(
            "`address` must be host:port (host: letters, digits, dots, dashes; port 1..=65535)",
        ));
    }
    Ok((id, m.address))
}

/// Refused unless every member that answers speaks wire revision 5 (older nodes cannot
/// read configuration records: design note 0009, "Compatibility"). Members that do not
/// answer are not held against the operation (replacing one is what it is for).
fn check_versions(g: &Gathered) -> Result<(), ApiError> {
    for m in &g.members {
        if g.map.is_retired(m.id) {
            continue;
        }
        let revision = match &m.facts {
            Facts::Described(d) => d.wire_revision,
            Facts::StatusOnly {
                gap: FactsGap::Unsupported,
                ..
            } => 0,
            Facts::StatusOnly { .. } | Facts::Unreachable { .. } => continue,
        };
        if revision < REVISION_CONFIGURATIONS {
            return Err(ApiError::Membership {
                code: MembershipRefusal::Outdated,
                detail: format!(
                    "node {} runs an older version (wire revision {revision}); upgrade every node before changing members",
                    m.id
                ),
            });
        }
    }
    Ok(())
}

/// Refused unless `id`'s node says it hosts no replica and no other member reports a
/// configuration that lists it (design note 0009 §6: remove only what drained).
fn check_hosts_nothing(g: &Gathered, id: NodeId) -> Result<(), ApiError> {
    let not_empty = |detail: String| ApiError::Membership {
        code: MembershipRefusal::NotEmpty,
        detail,
    };
    for m in &g.members {
        if m.id == id {
            let hosted = match &m.facts {
                Facts::Described(d) => d.shards.len(),
                Facts::StatusOnly { status, .. } => status.shards.len(),
                Facts::Unreachable { error } => {
                    return Err(not_empty(format!(
                        "node {id} cannot be asked whether it still hosts replicas ({error}); a node lost for good is replaced, not removed"
                    )));
                }
            };
            if hosted > 0 {
                return Err(not_empty(format!(
                    "node {id} still hosts {hosted} replicas; wait until its moves are done (GET /admin/v1/moves)"
                )));
            }
        } else if let Facts::Described(d) = &m.facts
            && let Some(f) = d
                .shards
                .iter()
                .find(|f| f.configuration.iter().flatten().any(|n| *n == id.0))
        {
            return Err(not_empty(format!(
                "shard {} at node {} still counts node {id} in its configuration; wait until its moves are done",
                f.shard, m.id
            )));
        }
    }
    Ok(())
}

/// One replacement at a time: refused while a member retired by an earlier replacement is
/// still a voter of some shard's configuration (its moves are not done). Retired ids count
/// for nothing, so a second replacement then could leave a shard without a quorum.
fn check_one_replacement(g: &Gathered) -> Result<(), ApiError> {
    for m in &g.members {
        let Facts::Described(d) = &m.facts else {
            continue;
        };
        for f in &d.shards {
            if let Some(r) = f
                .configuration
                .iter()
                .flatten()
                .find(|n| g.map.is_retired(NodeId(**n)))
            {
                return Err(ApiError::Membership {
                    code: MembershipRefusal::TooFew,
                    detail: format!(
                        "node {r}, retired by an earlier replacement, is still a voter of shard {}: another replacement now could leave it without a quorum; wait until the moves are done (GET /admin/v1/moves)",
                        f.shard
                    ),
                });
            }
        }
    }
    Ok(())
}

fn entry(map: &ShardMap) -> MembershipChange {
    MembershipChange {
        map_version: map.version(),
        members: map
            .members()
            .iter()
            .map(|m| MemberEntry {
                id: m.id.0,
                addr: m.addr.clone(),
                state: match m.state {
                    MemberState::Active => MemberStateName::Active,
                    MemberState::Draining => MemberStateName::Draining,
                    MemberState::Retired => MemberStateName::Retired,
                },
            })
            .collect(),
    }
}

/// Checks and publishes `change`.
async fn change(state: &AppState, change: MemberChange) -> Result<MembershipChange, ApiError> {
    let view = state.admin_view()?;
    let snap = state.admin_snapshot().await?;
    // The map's own checks first (states, ids, the active count): the clearest refusals.
    change
        .apply(&snap.gathered.map)
        .map_err(ApiError::from_shard_map)?;
    check_versions(&snap.gathered)?;
    match change {
        MemberChange::Remove { id } => check_hosts_nothing(&snap.gathered, id)?,
        MemberChange::Replace { .. } => check_one_replacement(&snap.gathered)?,
        MemberChange::Add { .. } | MemberChange::Drain { .. } => {}
    }
    let next = view.change_members(change).await?;
    state.admin_forget_snapshot().await;
    Ok(entry(&next))
}

/// Adds a member (design note 0009 §6): start its node first (same object store, no
/// `initial_members`); it waits until this version lists it, then gets learners of the
/// shards the ring now places on it, which become voters as they catch up.
#[utoipa::path(post, path = "/admin/v1/members", tag = "membership",
    security(("bearer" = []), ("session" = [])),
    request_body(content = NewMember, content_type = "application/json"),
    responses((status = 201, description = "Published: the new shard map version.", body = MembershipChange)))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let (id, addr) = new_member(&headers, &body)?;
    let done = change(&state, MemberChange::Add { id, addr }).await?;
    let mut res = json(done);
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// Drains a member: it leaves the ring, and its replicas move to the active members (it
/// keeps serving them until each move is done). Refused when fewer than N active members
/// would remain.
#[utoipa::path(post, path = "/admin/v1/members/{id}/drain", tag = "membership",
    security(("bearer" = []), ("session" = [])),
    params(("id" = u32, Path, minimum = 1, description = "The member's node id.")),
    responses((status = 200, description = "Published: the new shard map version.", body = MembershipChange)))]
pub(crate) async fn drain_member(
    State(state): State<AppState>,
    _auth: Admin,
    MemberId(id): MemberId,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    Ok(json(change(&state, MemberChange::Drain { id }).await?))
}

/// Removes a drained member from the map: refused unless it is draining, its node says it
/// hosts nothing and no shard's configuration lists it. Its node can then be stopped.
#[utoipa::path(delete, path = "/admin/v1/members/{id}", tag = "membership",
    security(("bearer" = []), ("session" = [])),
    params(("id" = u32, Path, minimum = 1, description = "The member's node id.")),
    responses((status = 200, description = "Published: the new shard map version.", body = MembershipChange)))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    _auth: Admin,
    MemberId(id): MemberId,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    Ok(json(change(&state, MemberChange::Remove { id }).await?))
}

/// Replaces a member lost for good by a new one: the old id is retired (it never serves
/// again; a process started with it is refused) and the new member takes its place in the
/// ring; the old member's replicas are re-created from the survivors.
#[utoipa::path(post, path = "/admin/v1/members/{id}/replace", tag = "membership",
    security(("bearer" = []), ("session" = [])),
    params(("id" = u32, Path, minimum = 1, description = "The node id of the member replaced.")),
    request_body(content = NewMember, content_type = "application/json",
        description = "The new member (an id never used before)."),
    responses((status = 200, description = "Published: the new shard map version.", body = MembershipChange)))]
pub(crate) async fn replace_member(
    State(state): State<AppState>,
    _auth: Admin,
    MemberId(old): MemberId,
    AppQuery(_none): AppQuery<NoQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let (new, addr) = new_member(&headers, &body)?;
    Ok(json(
        change(&state, MemberChange::Replace { old, new, addr }).await?,
    ))
}

/// Every shard's move toward the newest map's placement: the configuration at its leader,
/// the target, the phase and its learners' lag; overall progress and an ETA from the
/// completion rate of the last minute.
#[utoipa::path(get, path = "/admin/v1/moves", tag = "membership",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Every shard's move.", body = super::model::Moves)))]
pub(crate) async fn moves(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let snap = state.admin_snapshot().await?;
    let at = tokio::time::Instant::now();
    let doc = {
        let mut log = state.inner.admin.moves.lock();
        super::moves::moves(&snap.gathered, &mut log, at)
    };
    Ok(json(doc))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tierkv_wire::proto::describe::{NodeDescription, ShardFacts};
    use tierkv_wire::shardmap::Member;

    use super::*;
    use crate::admin::view::MemberFacts;

    /// Node 3 was replaced by node 4; `voters` is what node 1 reports as shard 0's
    /// configuration.
    fn after_a_replacement(voters: Vec<Vec<u32>>) -> Gathered {
        let members = (1..=3)
            .map(|i| Member::active(NodeId(i), format!("h:{i}")))
            .collect();
        let map = ShardMap::new(1, 1, 3, 8, members)
            .and_then(|m| m.replace_member(NodeId(3), NodeId(4), "h:4"))
            .expect("map");
        let described = NodeDescription {
            node: 1,
            wire_revision: REVISION_CONFIGURATIONS,
            shards: vec![ShardFacts {
                shard: 0,
                role: "leader".to_owned(),
                configuration: voters,
                ..ShardFacts::default()
            }],
            ..NodeDescription::default()
        };
        Gathered {
            map: Arc::new(map),
            members: vec![MemberFacts {
                id: NodeId(1),
                addr: "h:1".to_owned(),
                answering: Some(true),
                last_seen_ms: None,
                facts: Facts::Described(Box::new(described)),
            }],
            events: Vec::new(),
        }
    }

    /// A second replacement waits until no configuration lists a retired member.
    #[test]
    fn one_replacement_at_a_time() {
        let moving = after_a_replacement(vec![vec![1, 2, 3], vec![1, 2, 4]]);
        let refused = check_one_replacement(&moving).expect_err("node 3 is still a voter");
        assert_eq!(refused.code(), crate::problem::ErrorCode::TooFewMembers);
        let done = after_a_replacement(vec![vec![1, 2, 4]]);
        assert!(check_one_replacement(&done).is_ok());
    }

    #[test]
    fn addresses_and_ids_are_validated() {
        for ok in ["127.0.0.1:7000", "node-4.internal:1", "a:65535"] {
            assert!(valid_addr(ok), "{ok}");
        }
        for bad in [
            "", "a", ":80", "a:", "a:0", "a:65536", "a b:80", "a:8x", "[::1]:80",
        ] {
            assert!(!valid_addr(bad), "{bad}");
        }
        assert_eq!(node_id(Some(1)), Some(NodeId(1)));
        assert_eq!(node_id(Some(u64::from(u32::MAX))), Some(NodeId(u32::MAX)));
        assert_eq!(node_id(Some(0)), None);
        assert_eq!(node_id(Some(1 << 32)), None);
        assert_eq!(node_id(None), None);
    }
}
