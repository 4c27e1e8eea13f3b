//! Proposals on a bad network (on `tabnode-sim`: a quarter of messages lost, some duplicated,
//! some late, every round shuffled): four members propose values and thresholds and approve
//! what they have seen, at random, so approvals cross and arrive in every order. Once the
//! network settles, every member holds the same proxy: the same proposals with the same
//! approvers and outcomes, the same threshold and the same values.
//!
//! `TABNODE_SIM_SEEDS=N` runs N seeds (default 5); `TABNODE_SIM_SEED=S` replays one.

mod common;

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{ProposalAction, ProposalOutcome, Proxy};
use tabnode_sim::{Faults, Sim, SimNode, ROUND_NANOS};
use tabnode_types::ContextId;

const MEMBERS: usize = 4;

fn position(node: &mut SimNode, ctx: &ContextId) -> Option<Vec<tabnode_types::DeltaId>> {
    let cp = block_on(node.checkpoint(ctx)).ok()?;
    (node.pending(ctx).ok()? == 0).then_some(cp.heads)
}

/// One member's random step: propose a value (now and then a threshold of 2), or approve a
/// proposal it knows. Refusals (approving twice, a proposal already run) are fine.
fn step(sim: &mut Sim, ctx: &ContextId, i: usize, round: usize) {
    let choice = sim.rng.below(10);
    let pick = sim.rng.next_u64();
    let node = sim.node(i);
    let Ok(proxy) = node.proxy(ctx) else { return };
    let active: Vec<_> = proxy.active().map(|p| p.id).collect();
    let _ = match choice {
        0..=2 => {
            let key = format!("k{}", pick % 3);
            let args = json!({"key": key, "value": format!("m{i}-r{round}")});
            block_on(node.execute(ctx, "propose_value", args)).map(drop)
        }
        3 => {
            let action = ProposalAction::SetNumApprovals { num_approvals: 2 };
            block_on(node.propose(ctx, vec![action])).map(drop)
        }
        _ if !active.is_empty() => {
            let id = active[(pick % active.len() as u64) as usize];
            block_on(node.approve_proposal(ctx, &id)).map(drop)
        }
        _ => Ok(()),
    };
}

fn run(seed: u64) {
    let replay = format!("seed {seed}: replay with TABNODE_SIM_SEED={seed}");
    let probe = common::guest("probe");
    let mut sim = Sim::new(seed, Faults::BAD);
    sim.add_member();
    let app = block_on(sim.node(0).install_app(&probe)).unwrap();
    let ctx = block_on(sim.node(0).create_context(app, json!({"title": "t"}))).unwrap();
    for _ in 1..MEMBERS {
        let i = sim.add_member();
        block_on(sim.node(i).install_app(&probe)).unwrap();
        let invitation = sim.node(0).invite(&ctx).unwrap();
        block_on(sim.node(i).join(&invitation)).unwrap();
    }
    for round in 0..40 {
        for i in 0..MEMBERS {
            if sim.rng.chance(50) {
                step(&mut sim, &ctx, i, round);
            }
        }
        sim.advance(ROUND_NANOS);
        sim.step();
    }
    let all: Vec<usize> = (0..MEMBERS).collect();
    let settled = sim.run_until(300, |sim| {
        let positions: Vec<_> = all.iter().map(|&i| position(sim.node(i), &ctx)).collect();
        positions[0].is_some() && positions.windows(2).all(|w| w[0] == w[1])
    });
    assert!(settled.is_some(), "{replay}: the members did not converge");
    let proxies: Vec<Proxy> = all
        .iter()
        .map(|&i| sim.node(i).proxy(&ctx).unwrap())
        .collect();
    for (i, proxy) in proxies.iter().enumerate().skip(1) {
        assert_eq!(
            proxy, &proxies[0],
            "{replay}: member {i}'s proxy differs from member 0's"
        );
    }
    let proxy = &proxies[0];
    let ran = proxy
        .proposals
        .values()
        .filter(|p| matches!(p.outcome, ProposalOutcome::Executed { .. }))
        .count();
    assert!(
        proxy.proposals.len() > 3 && ran > 0,
        "{replay}: too little happened: {proxy:?}"
    );
    for p in proxy.proposals.values() {
        if let ProposalOutcome::Executed { .. } = p.outcome {
            assert!(
                p.approvers.len() >= 2,
                "{replay}: {p:?} ran with one approval"
            );
        }
    }
}

#[test]
fn every_member_ends_with_the_same_proxy_whatever_the_network_did() {
    for seed in common::sim_seeds(5) {
        run(seed);
    }
}
