//! What a guest may make this node do beyond its own call. A guest acts in its own context, not
//! with the node's whole authority:
//!
//! - its `context_delete` reaches only its own context and the contexts it created
//!   (`context_create`; which context created one is stored with it), and so do its xcalls
//!   unless the embedder consents to one into another context of the node (merod lets a guest
//!   xcall into any context of the node; a workflow of Calimero's relies on it);
//! - one user action ([`Node::execute`]) has one budget ([`Limits::action_calls`] calls and
//!   [`Limits::action_fuel`] fuel) shared by every call it causes, at every level of xcalls; an
//!   action that runs out is undone whole ([`NodeError::OverBudget`]): none of its calls stands;
//! - a request the user did not make and may not want (`context_delete`,
//!   `context_add_member`, `context_remove_member`, an xcall beyond the contexts the guest
//!   reaches) is made only with the embedder's consent
//!   ([`GuestPolicy`]); without a policy the node refuses it ([`NodeError::NoConsent`]).

use super::*;
use tabnode_runtime::Limits;

/// A request of a guest that acts with the node's authority beyond the call's own state (it
/// cannot be undone, or changes who holds the context): made only with the embedder's consent
/// (see [`Node::set_guest_policy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRequest {
    /// `context_delete`: a call in `caller` asks this node to drop `target` (its state, deltas,
    /// audit trail and keys).
    DeleteContext {
        caller: ContextId,
        target: ContextId,
    },
    /// `context_add_member`: a call in `context` asks this node (an admin there) to make
    /// `member` a member of it, with the secret to read all it holds.
    AddMember {
        context: ContextId,
        member: PublicKey,
    },
    /// `context_remove_member`: a call in `context` asks this node (an admin there) to remove
    /// `member`, and every key it invited, from it.
    RemoveMember {
        context: ContextId,
        member: PublicKey,
    },
    /// `xcall`: a call in `caller` asks this node to run a method, as its member, in `target`,
    /// a context of the node that `caller` neither is nor created.
    XCall {
        caller: ContextId,
        target: ContextId,
    },
}

impl GuestRequest {
    /// What the request is, as a call's `contextRequests` names it: `delete`, `addMember`,
    /// `removeMember`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DeleteContext { .. } => "delete",
            Self::AddMember { .. } => "addMember",
            Self::RemoveMember { .. } => "removeMember",
            Self::XCall { .. } => "xcall",
        }
    }

    /// The context the request changes.
    pub fn context(&self) -> ContextId {
        match self {
            Self::DeleteContext { target, .. } | Self::XCall { target, .. } => *target,
            Self::AddMember { context, .. } | Self::RemoveMember { context, .. } => *context,
        }
    }

    /// The context whose guest asks (for a membership change, the context it changes).
    pub fn caller(&self) -> ContextId {
        match self {
            Self::DeleteContext { caller, .. } | Self::XCall { caller, .. } => *caller,
            Self::AddMember { context, .. } | Self::RemoveMember { context, .. } => *context,
        }
    }

    /// The member it adds or removes, if any.
    pub fn member(&self) -> Option<PublicKey> {
        match self {
            Self::DeleteContext { .. } | Self::XCall { .. } => None,
            Self::AddMember { member, .. } | Self::RemoveMember { member, .. } => Some(*member),
        }
    }

    /// What the request asks, for an error message.
    fn describe(&self) -> String {
        match self {
            Self::DeleteContext { target, .. } => format!("delete {target}"),
            Self::AddMember { context, member } => format!("add {member} to {context}"),
            Self::RemoveMember { context, member } => format!("remove {member} from {context}"),
            Self::XCall { caller, target } => format!("xcall from {caller} into {target}"),
        }
    }
}

/// How the node answers a guest's [`GuestRequest`].
#[derive(Default)]
pub enum GuestPolicy {
    /// Refuse each one with [`NodeError::NoConsent`]: the default, for an embedder that has not
    /// said how to ask its user.
    #[default]
    Refuse,
    /// Make each one: for an embedder with no user to ask (a script, a test).
    Allow,
    /// Ask the embedder, which asks its user: `true` makes the request.
    Ask(Box<dyn FnMut(&GuestRequest) -> bool>),
}

/// One user action under way: what it has left of its budget, and what to undo should it run
/// out (see the module docs).
pub(super) struct Action {
    calls_left: usize,
    fuel_left: u64,
    limits: Limits,
    /// Whether a call that queues xcalls starts holding the action's writes back (see
    /// [`Node::hold_writes`]), to commit them together or not at all; only [`Node::execute`]
    /// runs a call's xcalls.
    may_hold: bool,
    holding: bool,
    /// Every context a call of the action ran in.
    touched: BTreeSet<ContextId>,
    /// The context requests of the action's xcalls, with the context of the call that made
    /// each: made once the action's calls are committed, like the first call's own.
    pub(super) requests: Vec<(ContextId, ContextRequest)>,
    /// The handlers its calls' events named, staged with their writes: queued to run once
    /// the action stands (see `handlers`).
    pub(super) handlers: Vec<HandlerCall>,
    /// How long the node's outputs were when the action began: what it added goes on undo.
    outgoing: usize,
    events: usize,
    unwritten_reads: usize,
    blobs: Rc<Rows>,
}

impl Action {
    /// Takes one call from the budget, for a call in `context`.
    pub(super) fn take_call(&mut self, context: &ContextId) -> Result<(), NodeError> {
        if self.calls_left == 0 {
            return Err(NodeError::OverBudget(format!(
                "the action would make more than {} calls (the call, its xcalls and theirs): \
                 none of it stands",
                self.limits.action_calls
            )));
        }
        self.calls_left -= 1;
        self.touched.insert(*context);
        Ok(())
    }

    /// The fuel the next call may use: what the action has left, at most a call's.
    pub(super) fn fuel(&self) -> u64 {
        self.fuel_left.min(self.limits.fuel)
    }

    /// Charges a call's fuel; a call that ran out of the action's fuel (rather than of a
    /// call's) makes the action run out.
    pub(super) fn charge(&mut self, ran: Result<Outcome, NodeError>) -> Result<Outcome, NodeError> {
        match ran {
            Ok(outcome) => {
                self.fuel_left = self.fuel_left.saturating_sub(outcome.fuel_used);
                Ok(outcome)
            }
            Err(NodeError::Execution(RuntimeError::OutOfFuel(fuel))) if fuel < self.limits.fuel => {
                Err(NodeError::OverBudget(format!(
                    "the action used its {} fuel (the call, its xcalls and theirs): none of it \
                     stands",
                    self.limits.action_fuel
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a call that queued `xcalls` should start holding the action's writes back.
    pub(super) fn should_hold(&mut self, xcalls: usize) -> bool {
        let start = self.may_hold && !self.holding && xcalls > 0;
        self.holding |= start;
        start
    }
}

impl<S: Store, E: Env> Node<S, E> {
    /// How this node answers guests' requests that cannot be undone (default
    /// [`GuestPolicy::Refuse`]).
    pub fn set_guest_policy(&mut self, policy: GuestPolicy) {
        self.guest_policy = policy;
    }

    /// A new user action; `may_hold` for one whose calls' xcalls run (see [`Action`]).
    pub(super) fn begin_action(&self, may_hold: bool) -> Action {
        let limits = self.runtime.limits().clone();
        Action {
            calls_left: limits.action_calls,
            fuel_left: limits.action_fuel,
            limits,
            may_hold,
            holding: false,
            touched: BTreeSet::new(),
            requests: Vec::new(),
            handlers: Vec::new(),
            outgoing: self.outgoing.len(),
            events: self.events.len(),
            unwritten_reads: self.unwritten_reads.len(),
            blobs: self.blobs.clone(),
        }
    }

    /// Starts holding the action's writes back (see [`Action::should_hold`]).
    pub(super) async fn hold_action_writes(&mut self, context: ContextId) -> Result<(), NodeError> {
        self.release_writes().await?;
        self.held = Some((context, Batch::new()));
        Ok(())
    }

    /// Ends an action's calls: with their writes held back, commits them all if `result` is
    /// `Ok`, else drops them, puts every context it touched back as the store has it, takes
    /// back what it queued to send and tell, and records the refusal in `context`'s trail.
    pub(super) async fn end_action(
        &mut self,
        action: &mut Action,
        result: Result<ExecuteResult, NodeError>,
        context: &ContextId,
        method: &str,
        args_hash: Hash,
    ) -> Result<ExecuteResult, NodeError> {
        action.may_hold = false;
        if !std::mem::take(&mut action.holding) {
            return result;
        }
        let held = self.held.take().map(|(_, batch)| batch).unwrap_or_default();
        let error = match result {
            Ok(done) => match self.commit(held).await {
                Ok(()) => return Ok(done),
                Err(e) => NodeError::from(e),
            },
            Err(e) => e,
        };
        self.unwritten_reads.truncate(action.unwritten_reads);
        self.blobs = action.blobs.clone();
        // Records of reads from before the action go first: a context read again from the store
        // then chains on from them.
        self.write_read_audits().await?;
        for id in &action.touched {
            self.reload_context(*id).await?;
        }
        // (Reading a context again asks its members what it missed: nothing, here.)
        self.outgoing.truncate(action.outgoing);
        self.events.truncate(action.events);
        if let Some(mut ctx) = self.contexts.remove(context) {
            let _ = self
                .audit_failure(&mut ctx, method, args_hash, &error)
                .await;
            self.contexts.insert(*context, ctx);
        }
        Err(error)
    }

    /// Records a call that failed in its context's audit trail.
    pub(super) async fn audit_failure(
        &mut self,
        ctx: &mut ContextState,
        method: &str,
        args_hash: Hash,
        error: &NodeError,
    ) -> Result<(), NodeError> {
        let entry = AuditEntry::call(
            self.key.public(),
            method,
            args_hash,
            error.kind(),
            ctx.record.root_hash,
            self.now,
        );
        self.audit_alone(ctx, entry).await
    }

    /// Whether a guest of `caller` may reach `target` (xcall into it, delete it): its own
    /// context, or one it created.
    pub(super) fn guest_may_reach(
        &self,
        caller: &ContextId,
        target: &ContextId,
        what: &str,
    ) -> Result<(), NodeError> {
        let created_by = self.context(target)?.created_by;
        if target == caller || created_by == Some(*caller) {
            return Ok(());
        }
        Err(NodeError::Unauthorized(format!(
            "a guest of {caller} may {what} only its own context and those it created, and \
             {target} is neither"
        )))
    }

    /// A guest's `context_delete` of `target` from a call in `caller`: a context it may reach,
    /// of which this node is an admin, and with the embedder's consent.
    pub(super) async fn delete_from_guest(
        &mut self,
        caller: &ContextId,
        target: &ContextId,
    ) -> Result<(), NodeError> {
        self.guest_may_reach(caller, target, "delete")?;
        self.check_may_delete(target)?;
        self.consent(GuestRequest::DeleteContext {
            caller: *caller,
            target: *target,
        })?;
        self.drop_context(target).await
    }

    /// A guest's `context_add_member` or `context_remove_member` in its own context: this node
    /// must be allowed the operation there (an admin), and the embedder must consent. The
    /// operation is this node's, as if its user had made it.
    pub(super) async fn member_op_from_guest(
        &mut self,
        request: GuestRequest,
    ) -> Result<DeltaId, NodeError> {
        let (context, member) = (request.context(), request.member().expect("a member op"));
        let op = match &request {
            GuestRequest::AddMember { .. } => MemberOp::SetRole {
                member,
                role: Role::Member,
            },
            _ => MemberOp::Remove {
                member,
                shares: Vec::new(),
            },
        };
        // Refusals the node would make anyway come first: the user is asked only for what
        // would be done.
        let me = self.key.public();
        if !self
            .context(&context)?
            .role_now(&me)
            .is_some_and(|role| op.allowed_for(role))
        {
            return Err(NodeError::Unauthorized(format!(
                "only admins change the membership of {context}"
            )));
        }
        if matches!(request, GuestRequest::RemoveMember { .. }) && member == me {
            return Err(NodeError::BadArgs(
                "an admin cannot remove itself; another admin can".into(),
            ));
        }
        self.consent(request)?;
        self.member_op(&context, op).await
    }

    /// Asks the embedder for its consent to a guest's `request` (see [`GuestPolicy`]):
    /// [`NodeError::NoConsent`] if it has no way to ask, or it declines.
    pub(super) fn consent(&mut self, request: GuestRequest) -> Result<(), NodeError> {
        let consented = match &mut self.guest_policy {
            GuestPolicy::Allow => true,
            GuestPolicy::Ask(ask) => ask(&request),
            GuestPolicy::Refuse => {
                return Err(NodeError::NoConsent(format!(
                    "a guest's request to {} needs the embedder's consent, and this node has no \
                     way to ask (see Node::set_guest_policy)",
                    request.describe()
                )))
            }
        };
        match consented {
            true => Ok(()),
            false => Err(NodeError::NoConsent(format!(
                "the user declined a guest's request to {}",
                request.describe()
            ))),
        }
    }
}
