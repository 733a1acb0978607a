//! Membership operations on a shard map (design note 0009 §6): the next version with a
//! member added, draining, removed, replaced, moved to another address or in another state.
//! Each checks the member states and the active count and leaves `self` unchanged.

use tierkv_engine::types::NodeId;

use super::{Member, MemberState, ShardMap, ShardMapError};

impl ShardMap {
    /// The next version of this map, with member `id` in `state`.
    pub fn with_member_state(&self, id: NodeId, state: MemberState) -> Result<Self, ShardMapError> {
        let mut members = self.members.clone();
        let m = members
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or(ShardMapError::NotAMember {
                id,
                version: self.version,
            })?;
        m.state = state;
        Self::new(
            self.version.saturating_add(1),
            self.shards,
            self.replication,
            self.vnodes,
            members,
        )
    }

    /// The next version of this map, with member `id` listening at `addr`.
    pub fn with_member_addr(&self, id: NodeId, addr: &str) -> Result<Self, ShardMapError> {
        let mut members = self.members.clone();
        let m = members
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or(ShardMapError::NotAMember {
                id,
                version: self.version,
            })?;
        addr.clone_into(&mut m.addr);
        Self::new(
            self.version.saturating_add(1),
            self.shards,
            self.replication,
            self.vnodes,
            members,
        )
    }

    /// Active members.
    #[must_use]
    pub fn active(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.state == MemberState::Active)
            .count()
    }

    fn next_with(&self, members: Vec<Member>) -> Result<Self, ShardMapError> {
        Self::new(
            self.version.saturating_add(1),
            self.shards,
            self.replication,
            self.vnodes,
            members,
        )
    }

    fn existing(&self, id: NodeId) -> Result<&Member, ShardMapError> {
        self.member(id).ok_or(ShardMapError::NotAMember {
            id,
            version: self.version,
        })
    }

    fn absent(&self, id: NodeId) -> Result<(), ShardMapError> {
        match self.member(id) {
            Some(m) => Err(ShardMapError::MemberExists {
                id,
                state: m.state,
                version: self.version,
            }),
            None => Ok(()),
        }
    }

    /// The next version with `id` added as an active member at `addr` (admin *add*, design
    /// note 0009 §6). Refused if the id is listed (in any state: retired ids are never
    /// reused).
    pub fn add_member(&self, id: NodeId, addr: &str) -> Result<Self, ShardMapError> {
        self.absent(id)?;
        let mut members = self.members.clone();
        members.push(Member::active(id, addr));
        self.next_with(members)
    }

    /// The next version with `id` draining (admin *drain*): off the ring, its replicas move
    /// to the active members. Refused unless it is active, and when fewer than N active
    /// members would remain.
    pub fn drain_member(&self, id: NodeId) -> Result<Self, ShardMapError> {
        let m = self.existing(id)?;
        if m.state != MemberState::Active {
            return Err(ShardMapError::WrongState {
                id,
                state: m.state,
                needed: "active",
            });
        }
        let active = self.active().saturating_sub(1);
        if active < self.replication {
            return Err(ShardMapError::TooFewActive {
                active,
                replication: self.replication,
            });
        }
        self.with_member_state(id, MemberState::Draining)
    }

    /// The next version without `id` (admin *remove*, once its node hosts nothing: the
    /// caller checks that). Refused unless it is draining.
    pub fn remove_member(&self, id: NodeId) -> Result<Self, ShardMapError> {
        let m = self.existing(id)?;
        if m.state != MemberState::Draining {
            return Err(ShardMapError::WrongState {
                id,
                state: m.state,
                needed: "draining",
            });
        }
        let members = self
            .members
            .iter()
            .filter(|m| m.id != id)
            .cloned()
            .collect();
        self.next_with(members)
    }

    /// The next version with `old` retired and `new` active at `addr` (admin *replace*: a
    /// node lost for good). Refused if `old` is retired already or `new` is listed.
    pub fn replace_member(
        &self,
        old: NodeId,
        new: NodeId,
        addr: &str,
    ) -> Result<Self, ShardMapError> {
        let m = self.existing(old)?;
        if m.state == MemberState::Retired {
            return Err(ShardMapError::WrongState {
                id: old,
                state: m.state,
                needed: "active or draining",
            });
        }
        self.absent(new)?;
        let mut members = self.members.clone();
        for m in &mut members {
            if m.id == old {
                m.state = MemberState::Retired;
            }
        }
        members.push(Member::active(new, addr));
        self.next_with(members)
    }
}
