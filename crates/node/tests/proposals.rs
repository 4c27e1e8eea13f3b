//! Proposals between members, with no chain: a guest's `send_proposal` / `approve_proposal`
//! (and the node's own methods) become operations of the context's signed log, and the
//! approval that reaches the threshold runs the actions on every member alike, whatever order
//! the approvals arrive in. Runs the probe guest (`propose_value`, `propose_raw`, `approve`).

mod common;

use common::{guest, node, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{NodeError, ProposalAction, ProposalId, ProposalOutcome, Proxy, Role};
use tabnode_types::{ContextId, DeltaId};

fn member(seed: u8) -> TestNode {
    let mut n = node(seed);
    block_on(n.install_app(&guest("probe"))).unwrap();
    n
}

/// A creates a probe context; the others join it (`roles` says with which role).
fn context(roles: &[Role]) -> (TestNode, Vec<TestNode>, ContextId) {
    let mut a = member(1);
    let app = block_on(a.install_app(&guest("probe"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({"title": "t"}))).unwrap();
    let mut others: Vec<TestNode> = (0..roles.len()).map(|i| member(i as u8 + 2)).collect();
    for (i, role) in roles.iter().enumerate() {
        let invitation = a.invite_as(&ctx, *role, u64::MAX).unwrap();
        block_on(others[i].join(&invitation)).unwrap();
        settle_all(&mut a, &mut others);
    }
    (a, others, ctx)
}

fn settle_all(a: &mut TestNode, others: &mut [TestNode]) {
    let mut all: Vec<&mut TestNode> = std::iter::once(a).chain(others.iter_mut()).collect();
    settle(&mut all);
}

fn call(
    node: &mut TestNode,
    ctx: &ContextId,
    method: &str,
    args: Value,
) -> tabnode_node::ExecuteResult {
    block_on(node.execute(ctx, method, args)).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// What a guest's `propose_value` proposed: the id it got back, checked against the request.
fn propose_value(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) -> ProposalId {
    let result = call(
        node,
        ctx,
        "propose_value",
        json!({"key": key, "value": value}),
    );
    let id: ProposalId = result.output.as_str().unwrap().parse().unwrap();
    let request = &result.context_requests[0];
    assert_eq!(
        (request.request, request.proposal, &request.error),
        ("propose", Some(id), &None)
    );
    id
}

fn approve_in_guest(
    node: &mut TestNode,
    ctx: &ContextId,
    id: &ProposalId,
) -> tabnode_node::ContextRequestResult {
    let mut result = call(node, ctx, "approve", json!({"id": id.0.to_vec()}));
    result.context_requests.remove(0)
}

fn value(node: &TestNode, ctx: &ContextId, key: &str) -> Option<String> {
    node.context_value(ctx, key.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

fn set_value(key: &str, value: &str) -> ProposalAction {
    ProposalAction::SetContextValue {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn heads(node: &mut TestNode, ctx: &ContextId) -> Vec<DeltaId> {
    block_on(node.checkpoint(ctx)).unwrap().heads
}

#[test]
fn a_guests_proposal_runs_on_every_member_once_approvals_reach_the_threshold() {
    let (mut a, mut others, ctx) = context(&[Role::Member, Role::Member]);
    let id = propose_value(&mut a, &ctx, "colour", "blue");
    settle_all(&mut a, &mut others);
    let [b, c] = &mut others[..] else {
        unreachable!()
    };
    for node in [&a, &*b, &*c] {
        let proposal = node.proposal(&ctx, &id).unwrap();
        assert_eq!(proposal.outcome, ProposalOutcome::Active);
        assert_eq!(
            proposal.approvers.iter().collect::<Vec<_>>(),
            [&a.public_key()],
            "the author's approval counts"
        );
        assert_eq!(
            proposal.actions,
            [set_value("colour", "blue")],
            "calimero-sdk's encoding"
        );
    }

    // B approves from its guest: two of the three approvals merod's proxy asks by default.
    let approved = approve_in_guest(b, &ctx, &id);
    assert_eq!((approved.request, approved.error), ("approve", None));
    settle_all(&mut a, &mut others);
    let [_, c] = &mut others[..] else {
        unreachable!()
    };
    assert_eq!(a.proposal(&ctx, &id).unwrap().approvers.len(), 2);
    assert_eq!(value(c, &ctx, "colour"), None, "not approved enough yet");

    // C approves through its node: the third approval runs the action on every member.
    let at = block_on(c.approve_proposal(&ctx, &id)).unwrap();
    settle_all(&mut a, &mut others);
    let proxy = a.proxy(&ctx).unwrap();
    assert_eq!(
        proxy.proposals[&id].outcome,
        ProposalOutcome::Executed { at }
    );
    for node in &others {
        assert_eq!(node.proxy(&ctx).unwrap(), proxy);
        assert_eq!(value(node, &ctx, "colour"), Some("blue".into()));
    }
    assert_eq!(value(&a, &ctx, "colour"), Some("blue".into()));
    assert_eq!(proxy.active().count(), 0);
}

#[test]
fn concurrent_approvals_give_every_member_the_same_outcome_whatever_the_order() {
    let (mut a, mut others, ctx) = context(&[Role::Member, Role::Member, Role::Member]);
    // Two proposals set one key; both reach the threshold by approvals C and D make at once,
    // each without having seen the other's.
    let first = block_on(a.propose(&ctx, vec![set_value("k", "from-a")])).unwrap();
    let second = block_on(others[0].propose(&ctx, vec![set_value("k", "from-b")])).unwrap();
    settle_all(&mut a, &mut others);
    let [b, c, d] = &mut others[..] else {
        unreachable!()
    };
    for id in [&first, &second] {
        block_on(c.approve_proposal(&ctx, id)).unwrap();
        block_on(d.approve_proposal(&ctx, id)).unwrap();
    }
    let (from_c, from_d) = (sent(c), sent(d));
    common::deliver(&from_c, d);
    common::deliver(&from_d, c);
    common::deliver(&from_c, &mut a);
    common::deliver(&from_d, &mut a);
    common::deliver(&from_d, b);
    common::deliver(&from_c, b);
    let (on_a, on_b) = (a.proxy(&ctx).unwrap(), b.proxy(&ctx).unwrap());
    assert_eq!(on_a, on_b, "the same proxy whatever the order");
    for id in [&first, &second] {
        assert!(matches!(
            on_a.proposals[id].outcome,
            ProposalOutcome::Executed { .. }
        ));
    }
    settle_all(&mut a, &mut others);
    let proxy = a.proxy(&ctx).unwrap();
    assert_eq!(proxy, on_a);
    for node in &others {
        assert_eq!(node.proxy(&ctx).unwrap(), proxy);
    }
    let k = value(&a, &ctx, "k");
    assert!(matches!(k.as_deref(), Some("from-a" | "from-b")), "{k:?}");
}

#[test]
fn the_proxys_own_actions_change_its_threshold_limit_and_proposals() {
    let (mut a, mut others, ctx) = context(&[Role::Member, Role::Member]);
    let approve_by_others = |a: &mut TestNode, others: &mut [TestNode], id: &ProposalId| {
        settle_all(a, others);
        for node in others.iter_mut() {
            block_on(node.approve_proposal(&ctx, id)).unwrap();
        }
    };
    // The limit: an author has at most this many proposals active.
    let limit = block_on(a.propose(
        &ctx,
        vec![ProposalAction::SetActiveProposalsLimit {
            active_proposals_limit: 2,
        }],
    ))
    .unwrap();
    approve_by_others(&mut a, &mut others, &limit);
    settle_all(&mut a, &mut others);
    assert_eq!(a.proxy(&ctx).unwrap().active_proposals_limit, 2);
    let kept = block_on(a.propose(&ctx, vec![set_value("x", "1")])).unwrap();
    let doomed = block_on(a.propose(&ctx, vec![set_value("y", "1")])).unwrap();
    let before = heads(&mut a, &ctx);
    let err = block_on(a.propose(&ctx, vec![set_value("z", "1")])).unwrap_err();
    assert!(matches!(err, NodeError::BadProposal(_)), "{err}");
    assert_eq!(heads(&mut a, &ctx), before, "a refusal makes no operation");

    // Deleting an active proposal: B proposes it, A and C approve.
    settle_all(&mut a, &mut others);
    let delete = block_on(others[0].propose(
        &ctx,
        vec![ProposalAction::DeleteProposal {
            proposal_id: doomed,
        }],
    ))
    .unwrap();
    settle_all(&mut a, &mut others);
    block_on(a.approve_proposal(&ctx, &delete)).unwrap();
    block_on(others[1].approve_proposal(&ctx, &delete)).unwrap();
    settle_all(&mut a, &mut others);
    assert_eq!(
        a.proposal(&ctx, &doomed).unwrap().outcome,
        ProposalOutcome::Deleted { by: delete }
    );
    let err = block_on(others[0].approve_proposal(&ctx, &doomed)).unwrap_err();
    assert!(matches!(err, NodeError::BadProposal(_)), "{err}");

    // The threshold: one approval (the author's) is enough from then on.
    let threshold = block_on(a.propose(
        &ctx,
        vec![ProposalAction::SetNumApprovals { num_approvals: 1 }],
    ))
    .unwrap();
    approve_by_others(&mut a, &mut others, &threshold);
    settle_all(&mut a, &mut others);
    let proxy = others[1].proxy(&ctx).unwrap();
    assert_eq!(proxy.num_approvals, 1);
    assert_eq!(
        proxy.proposals[&kept].outcome,
        ProposalOutcome::Active,
        "runs at its next approval, as on the chain"
    );
    block_on(others[0].approve_proposal(&ctx, &kept)).unwrap();
    let now = block_on(others[1].propose(&ctx, vec![set_value("w", "2")])).unwrap();
    settle_all(&mut a, &mut others);
    assert_eq!(value(&a, &ctx, "x"), Some("1".into()));
    assert_eq!(value(&a, &ctx, "w"), Some("2".into()));
    assert!(matches!(
        a.proposal(&ctx, &now).unwrap().outcome,
        ProposalOutcome::Executed { .. }
    ));
}

#[test]
fn actions_that_need_a_chain_fail_whole_with_a_typed_outcome() {
    let (mut a, mut others, ctx) = context(&[Role::Member, Role::Member]);
    // A guest proposes a transfer next to a value, encoded as calimero-sdk encodes actions.
    let actions = vec![
        set_value("paid", "yes"),
        ProposalAction::Transfer {
            receiver_id: "bob.near".into(),
            amount: 10u128.pow(24),
        },
    ];
    let result = call(
        &mut a,
        &ctx,
        "propose_raw",
        json!({"actions": borsh::to_vec(&actions).unwrap()}),
    );
    let id = ProposalId(
        serde_json::from_value::<Vec<u8>>(result.output)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(result.context_requests[0].error, None);
    settle_all(&mut a, &mut others);
    for node in others.iter_mut() {
        block_on(node.approve_proposal(&ctx, &id)).unwrap();
    }
    settle_all(&mut a, &mut others);
    for node in std::iter::once(&a).chain(&others) {
        let proposal = node.proposal(&ctx, &id).unwrap();
        assert_eq!(
            proposal.outcome,
            ProposalOutcome::NeedsChain { action: "Transfer" }
        );
        assert_eq!(value(node, &ctx, "paid"), None, "none of its actions ran");
    }
    let shown = serde_json::to_value(a.proposal(&ctx, &id).unwrap()).unwrap();
    assert_eq!(shown["status"], "needsChain");
    assert_eq!(
        shown["actions"][1],
        json!({"scope": "Transfer", "params": {"receiver_id": "bob.near", "amount": "1000000000000000000000000"}})
    );
}

#[test]
fn bad_proposals_and_approvals_are_refused_and_change_nothing() {
    let (mut a, mut others, ctx) = context(&[Role::Reader]);
    let id = propose_value(&mut a, &ctx, "k", "v");
    settle_all(&mut a, &mut others);
    let reader = &mut others[0];
    let before: Proxy = a.proxy(&ctx).unwrap();

    // Malformed borsh from a guest: the call stands, its proposal is refused.
    let result = call(&mut a, &ctx, "propose_raw", json!({"actions": [1, 2, 3]}));
    let refused = &result.context_requests[0];
    assert_eq!(
        (refused.request, refused.error_kind),
        ("propose", Some("BadProposal"))
    );
    let heads_before = heads(&mut a, &ctx);
    // No actions at all, and a threshold of zero.
    for actions in [
        vec![],
        vec![ProposalAction::SetNumApprovals { num_approvals: 0 }],
    ] {
        let err = block_on(a.propose(&ctx, actions)).unwrap_err();
        assert!(matches!(err, NodeError::BadProposal(_)), "{err}");
    }
    // An unknown id.
    let unknown = ProposalId([7; 32]);
    assert!(matches!(
        block_on(a.approve_proposal(&ctx, &unknown)),
        Err(NodeError::UnknownProposal(_))
    ));
    assert!(matches!(
        a.proposal(&ctx, &unknown),
        Err(NodeError::UnknownProposal(_))
    ));
    // Approving twice (the author approved when it proposed).
    let err = block_on(a.approve_proposal(&ctx, &id)).unwrap_err();
    assert!(matches!(err, NodeError::BadProposal(_)), "{err}");
    // A reader neither proposes nor approves.
    let err = block_on(reader.approve_proposal(&ctx, &id)).unwrap_err();
    assert!(matches!(err, NodeError::Unauthorized(_)), "{err}");
    let err = block_on(reader.propose(&ctx, vec![set_value("r", "1")])).unwrap_err();
    assert!(matches!(err, NodeError::Unauthorized(_)), "{err}");
    // Nor does a node that is no member.
    let mut stranger = member(9);
    assert!(matches!(
        stranger.proposals(&ctx),
        Err(NodeError::UnknownContext(_))
    ));
    assert!(matches!(
        block_on(stranger.approve_proposal(&ctx, &id)),
        Err(NodeError::UnknownContext(_))
    ));
    assert_eq!(
        heads(&mut a, &ctx),
        heads_before,
        "a refusal makes no operation"
    );
    // A guest's approval of an unknown id is refused after its call.
    assert_eq!(
        approve_in_guest(&mut a, &ctx, &unknown).error_kind,
        Some("UnknownProposal")
    );

    settle_all(&mut a, &mut others);
    assert_eq!(a.proxy(&ctx).unwrap(), before);
    assert_eq!(others[0].proxy(&ctx).unwrap(), before);
    assert_eq!(a.proposals(&ctx).unwrap().len(), 1);
}

/// A signed operation by `key` (certified by `cert`) on `parents`, made by hand: what a member
/// whose node skipped every local check could send.
fn forged(
    ctx: ContextId,
    key: &tabnode_types::SecretKey,
    cert: &tabnode_node::MemberCert,
    parents: Vec<DeltaId>,
    timestamp: u64,
    op: tabnode_node::MemberOp,
) -> tabnode_node::Delta {
    tabnode_node::DeltaBody {
        context_id: ctx,
        parents,
        author: key.public(),
        timestamp,
        artifact: vec![],
        root_hash: tabnode_types::Hash([0; 32]),
        events: vec![],
        genesis: None,
        author_cert: cert.clone(),
        op: Some(op),
    }
    .sign(key)
}

#[test]
fn forged_operations_from_readers_and_members_count_for_nothing_on_arrival() {
    use tabnode_node::{MemberOp, WireMessage};
    let mut a = member(1);
    let app = block_on(a.install_app(&guest("probe"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({"title": "t"}))).unwrap();
    let reader = tabnode_types::SecretKey::from_seed([70; 32]);
    let writer = tabnode_types::SecretKey::from_seed([71; 32]);
    let invitation = a.invite_as(&ctx, Role::Reader, u64::MAX).unwrap();
    let reader_cert = common::admit(&mut a, &invitation, &reader);
    let invitation = a.invite_as(&ctx, Role::Member, u64::MAX).unwrap();
    let writer_cert = common::admit(&mut a, &invitation, &writer);
    let id = propose_value(&mut a, &ctx, "k", "v");
    a.take_outgoing();
    let before = a.proxy(&ctx).unwrap();

    let send = |a: &mut TestNode, key: &tabnode_types::SecretKey, cert, op| {
        let parents = heads(a, &ctx);
        // A millisecond passes per forgery (the test gives the time): later than its parents.
        a.advance_to(a.now() + 1_000_000);
        let at = a.now();
        let delta = forged(ctx, key, cert, parents, at, op);
        let sealed = a.seal_for(&ctx, &WireMessage::Deltas(vec![delta])).unwrap();
        block_on(a.handle_message(&tabnode_node::context_topic(&ctx), &sealed));
    };
    // A reader's approval and proposal: signed and delivered, but a reader may not.
    send(
        &mut a,
        &reader,
        &reader_cert,
        MemberOp::Approve { proposal: id },
    );
    let own = ProposalId([9; 32]);
    let actions = vec![set_value("r", "1")];
    send(
        &mut a,
        &reader,
        &reader_cert,
        MemberOp::Propose {
            proposal: own,
            actions,
        },
    );
    // A writer's proposal with no actions, one that takes an id in use, and a second approval
    // of one proposal: none counts more than the rules allow.
    let empty = ProposalId([10; 32]);
    send(
        &mut a,
        &writer,
        &writer_cert,
        MemberOp::Propose {
            proposal: empty,
            actions: vec![],
        },
    );
    let taken = vec![set_value("k", "stolen")];
    send(
        &mut a,
        &writer,
        &writer_cert,
        MemberOp::Propose {
            proposal: id,
            actions: taken,
        },
    );
    for _ in 0..2 {
        send(
            &mut a,
            &writer,
            &writer_cert,
            MemberOp::Approve { proposal: id },
        );
    }
    let proxy = a.proxy(&ctx).unwrap();
    assert_eq!(proxy.proposals.len(), 1, "{proxy:?}");
    let proposal = &proxy.proposals[&id];
    assert_eq!(proposal.actions, before.proposals[&id].actions);
    assert_eq!(
        proposal.approvers.iter().copied().collect::<Vec<_>>().len(),
        2,
        "the author's and the writer's, once"
    );
    assert!(proposal.approvers.contains(&writer.public()));
    assert_eq!(proposal.outcome, ProposalOutcome::Active);
}

/// What a member sends a context's proxy contract is built and signed from its own log: the
/// author's proposal, another member's approval once it gave it, calimero-context-config's
/// JSON (amounts as numbers), and nothing else. A node holding the context's anchor shows a
/// proposal that reached the threshold with a chain action as `onChain`.
#[test]
fn a_members_part_for_the_proxy_contract_is_signed_from_its_log_and_nothing_else() {
    let (mut a, mut others, ctx) = context(&[Role::Member, Role::Member]);
    let actions = vec![
        set_value("paid", "yes"),
        ProposalAction::Transfer {
            receiver_id: "bob.near".into(),
            amount: 1 << 100,
        },
    ];
    let id = block_on(a.propose(&ctx, actions)).unwrap();
    let local = block_on(a.propose(&ctx, vec![set_value("k", "v")])).unwrap();
    settle_all(&mut a, &mut others);

    let proposed = a.proxy_request(&ctx, &id).unwrap();
    assert_eq!(proposed.scope, tabnode_node::ProxyScope::Propose);
    assert_eq!(proposed.action, "Transfer");
    assert_eq!(proposed.signer, a.public_key());
    tabnode_types::verify_signature(&a.public_key(), &proposed.payload, &proposed.signature)
        .unwrap();
    let text = String::from_utf8(proposed.payload.clone()).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"scope":"Propose","params":{{"proposal":{{"id":"{id}","author_id":"{}","actions":[{{"scope":"SetContextValue","params":{{"key":[112,97,105,100],"value":[121,101,115]}}}},{{"scope":"Transfer","params":{{"receiver_id":"bob.near","amount":{}}}}}]}}}}}}"#,
            a.public_key(),
            1u128 << 100
        )
    );

    // B has not approved: nothing to sign. Nor for a proposal that runs here, or no proposal.
    let b = &mut others[0];
    let refused = |r: Result<_, NodeError>| r.unwrap_err().kind();
    assert_eq!(refused(b.proxy_request(&ctx, &id)), "BadProposal");
    assert_eq!(refused(a.proxy_request(&ctx, &local)), "BadProposal");
    assert_eq!(
        refused(a.proxy_request(&ctx, &ProposalId([9; 32]))),
        "UnknownProposal"
    );
    assert_eq!(
        refused(a.proxy_request(&ContextId([9; 32]), &id)),
        "UnknownContext"
    );
    block_on(b.approve_proposal(&ctx, &id)).unwrap();
    let approved = b.proxy_request(&ctx, &id).unwrap();
    assert_eq!(approved.scope, tabnode_node::ProxyScope::Approve);
    let payload: Value = serde_json::from_slice(&approved.payload).unwrap();
    assert_eq!(
        payload,
        json!({"scope": "Approve", "params": {"approval": {
            "proposal_id": id.to_string(),
            "signer_id": b.public_key().to_string(),
            "added_timestamp": 0,
        }}})
    );
    tabnode_types::verify_signature(&b.public_key(), &approved.payload, &approved.signature)
        .unwrap();

    block_on(others[1].approve_proposal(&ctx, &id)).unwrap();
    settle_all(&mut a, &mut others);
    let needs = ProposalOutcome::NeedsChain { action: "Transfer" };
    assert_eq!(a.proposal(&ctx, &id).unwrap().outcome, needs);
    let anchor = tabnode_node::AnchorView {
        members: std::iter::once(&a)
            .chain(&others)
            .map(|n| n.public_key())
            .collect(),
        app_matches: true,
    };
    block_on(a.set_anchor(&ctx, Some(anchor))).unwrap();
    assert_eq!(
        a.proposal(&ctx, &id).unwrap().outcome,
        ProposalOutcome::OnChain { action: "Transfer" }
    );
    assert_eq!(
        value(&a, &ctx, "paid"),
        None,
        "none of its actions ran here"
    );
    assert_eq!(
        others[0].proposal(&ctx, &id).unwrap().outcome,
        needs,
        "a node without the anchor"
    );
    // The last approver can still send its part.
    assert!(others[1].proxy_request(&ctx, &id).is_ok());
    block_on(a.set_anchor(&ctx, None)).unwrap();
    assert_eq!(a.proposal(&ctx, &id).unwrap().outcome, needs);
}
