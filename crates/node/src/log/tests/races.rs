//! Operations racing a removal (`log/races.rs`): each checked in every order of arrival.

use super::*;

fn set_role(member: u8, role: Role) -> Option<MemberOp> {
    Some(MemberOp::SetRole {
        member: key(member),
        role,
    })
}

/// Admins 3 and 5, both invited by 1 (one rank): 3 removes 5 (6) while 5, cut off, demotes 4
/// (7); 2 writes on the removal (8). 5's demotion races its removal, and nobody but 5 built
/// on it: it counts for nothing, in every order (it used to be refused where the removal's
/// settlement arrived first, and count elsewhere: `arrival_orders`, seed 15). Had a third
/// member taken it before hearing of the removal (9, by 2), it counts; the member it demotes
/// cannot vouch for it, nor can a key resting on 5, nor 5 itself.
#[test]
fn an_operation_racing_its_authors_removal_counts_only_if_a_third_member_vouched_for_it() {
    let base: Vec<Made> = vec![
        (5, vec![4], vec![5, 1], Role::Admin, None),
        (6, vec![5], vec![3, 1], Role::Admin, remove(5)),
        (
            7,
            vec![5],
            vec![5, 1],
            Role::Admin,
            set_role(4, Role::Reader),
        ),
        (8, vec![6], vec![2, 1], Role::Member, None),
        (10, vec![7], vec![5, 1], Role::Admin, None),
    ];
    let verdict = one_verdict_in_every_order(&base);
    assert_eq!(verdict.applied_ops, vec![id(6)]);
    assert_eq!(verdict.roles.get(&key(4)), None);
    assert!(verdict.void.contains(&id(7)) && verdict.void.contains(&id(10)));

    for (voucher, counts) in [
        (vec![2, 1], true),
        (vec![4, 3, 1], false),
        (vec![9, 5, 1], false),
    ] {
        let mut deltas = base.clone();
        deltas.push((9, vec![10], voucher.clone(), Role::Member, None));
        let verdict = one_verdict_in_every_order(&deltas);
        let demoted = verdict.roles.get(&key(4)) == Some(&(Role::Reader, id(7)));
        assert_eq!(demoted, counts, "vouched by {voucher:?}");
        assert_eq!(
            verdict.removed.keys().copied().collect::<Vec<_>>(),
            vec![key(5)]
        );
    }

    // A write that vouches asks for the log to be judged anew.
    let mut dag = context();
    for (n, parents, chain, role, op) in base {
        entry(&mut dag, n, n as u64, &parents, &chain, role, op);
    }
    let mut log = Log::judge(&dag);
    assert!(!log.needs_judging());
    // Not a write the removed key (or a key resting on it) makes on its operation: it cannot
    // vouch, so a removed key's void writes cost no judging.
    entry(&mut dag, 11, 11, &[10], &[5, 1], Role::Admin, None);
    log.add(id(11), &dag[&id(11)], false);
    entry(&mut dag, 12, 12, &[11], &[12, 5, 1], Role::Member, None);
    log.add(id(12), &dag[&id(12)], false);
    assert!(!log.needs_judging());
    entry(&mut dag, 9, 9, &[10], &[2, 1], Role::Member, None);
    log.add(id(9), &dag[&id(9)], true);
    assert!(log.needs_judging());
}

/// Admins 3 and 5 (one rank) remove each other (6, 7). A third member that built on one
/// removal alone decides: 2 followed 3 (8), nobody followed 5, so 5 is removed and 3 stays.
/// Where a third member followed each (9, by 7, on 5's), or none did, both are removed. What
/// the winner did concurrently with the removal that lost counts.
#[test]
fn of_removals_racing_each_other_one_a_third_member_followed_alone_wins() {
    let base: Vec<Made> = vec![
        (5, vec![4], vec![5, 1], Role::Admin, None),
        (6, vec![5], vec![3, 1], Role::Admin, remove(5)),
        (7, vec![5], vec![5, 1], Role::Admin, remove(3)),
    ];
    let removed = |verdict: Verdict| verdict.removed.keys().copied().collect::<Vec<_>>();
    assert_eq!(
        removed(one_verdict_in_every_order(&base)),
        vec![key(3), key(5)]
    );
    let mut followed = base.clone();
    followed.push((8, vec![6], vec![2, 1], Role::Member, None));
    let verdict = one_verdict_in_every_order(&followed);
    assert_eq!(removed(verdict.clone()), vec![key(5)]);
    assert_eq!(verdict.applied_ops, vec![id(6)]);
    // What the winner did concurrently with the removal that lost counts (3 demotes 4).
    let mut with_demotion = followed.clone();
    with_demotion.push((
        10,
        vec![6],
        vec![3, 1],
        Role::Admin,
        set_role(4, Role::Reader),
    ));
    let verdict = one_verdict_in_every_order(&with_demotion);
    assert_eq!(verdict.roles.get(&key(4)), Some(&(Role::Reader, id(10))));
    followed.push((9, vec![7], vec![7, 1], Role::Member, None));
    assert_eq!(
        removed(one_verdict_in_every_order(&followed)),
        vec![key(3), key(5)]
    );
}
