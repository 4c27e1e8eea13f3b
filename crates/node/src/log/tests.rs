//! The membership rule's tests: each rule on a small DAG, and the same verdict whatever the
//! order of arrival.

use super::*;
use tabnode_types::SecretKey;

mod admissions;
mod races;

fn key(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

fn id(n: u8) -> DeltaId {
    DeltaId([n; 32])
}

/// A delta `n` at time `t` on `parents` by `author` (chain: author, then inviters).
fn entry(
    dag: &mut HashMap<DeltaId, Entry>,
    n: u8,
    t: u64,
    parents: &[u8],
    chain: &[u8],
    role: Role,
    op: Option<MemberOp>,
) {
    dag.insert(
        id(n),
        Entry {
            parents: parents.iter().map(|p| id(*p)).collect(),
            author: key(chain[0]),
            timestamp: t,
            cert_role: role,
            chain: chain.iter().map(|k| key(*k)).collect(),
            admission: None,
            op,
        },
    );
}

/// Admin 1 created the context (delta 1), invited 2 (a member) and 3 (an admin), and 3
/// invited 4.
fn context() -> HashMap<DeltaId, Entry> {
    let mut dag = HashMap::new();
    entry(&mut dag, 1, 1, &[], &[1], Role::Admin, None);
    entry(&mut dag, 2, 2, &[1], &[2, 1], Role::Member, None);
    entry(&mut dag, 3, 3, &[2], &[3, 1], Role::Admin, None);
    entry(&mut dag, 4, 4, &[3], &[4, 3, 1], Role::Member, None);
    dag
}

#[test]
fn nothing_is_void_without_operations() {
    assert_eq!(Log::judge(&context()).verdict, Verdict::default());
}

#[test]
fn a_removal_voids_what_comes_after_and_concurrently_but_not_before() {
    let mut dag = context();
    // 2 writes (5), admin 1 removes 2 having seen 5 (6); 2 writes concurrently (7) and after (8).
    entry(&mut dag, 5, 5, &[4], &[2, 1], Role::Member, None);
    entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, remove(2));
    entry(&mut dag, 7, 7, &[5], &[2, 1], Role::Member, None);
    entry(&mut dag, 8, 8, &[6, 7], &[2, 1], Role::Member, None);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.void, BTreeSet::from([id(7), id(8)]));
    assert_eq!(verdict.removed, BTreeMap::from([(key(2), id(6))]));
}

/// An admin's removal of key `member`.
fn remove(member: u8) -> Option<MemberOp> {
    Some(MemberOp::Remove {
        shares: vec![],
        member: key(member),
    })
}

fn upgrade(to: u8) -> Option<MemberOp> {
    Some(MemberOp::SetApp {
        app_id: AppId::of_wasm(&[to]),
        migrate: None,
        wasm: vec![to],
    })
}

/// Two concurrent upgrades: neither counts, whichever the authors stamped earlier (the
/// race is nobody's to win); an upgrade made having seen both counts. A write made after one
/// of them only was made by the app it installed (it counted where the write was made), which
/// the context does not run: void (it stood, and the app running the context merged it into
/// a state of the other shape: `arrival_orders`, seed 10, ended on a state whose reads trap).
#[test]
fn concurrent_upgrades_cancel_each_other_whatever_the_timestamps() {
    for (t5, t6) in [(5, 6), (6, 5)] {
        let mut dag = context();
        // Admin 1 upgrades (5); admin 3 upgrades concurrently (6); member 2 writes
        // concurrently with both (7), then after the first only (8), then after both (9);
        // a third upgrade sees both (10).
        entry(&mut dag, 5, t5, &[4], &[1], Role::Admin, upgrade(1));
        entry(&mut dag, 6, t6, &[4], &[3, 1], Role::Admin, upgrade(2));
        entry(&mut dag, 7, 7, &[4], &[2, 1], Role::Member, None);
        entry(&mut dag, 8, 8, &[5], &[2, 1], Role::Member, None);
        entry(&mut dag, 9, 9, &[5, 6, 8], &[2, 1], Role::Member, None);
        entry(&mut dag, 10, 10, &[9], &[1], Role::Admin, upgrade(3));
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.upgrades, vec![id(10)], "{t5} {t6}");
        assert_eq!(verdict.void, BTreeSet::from([id(7), id(8)]), "{t5} {t6}");
        // A member's upgrade counts for nothing.
        entry(&mut dag, 11, 11, &[10], &[2, 1], Role::Member, upgrade(4));
        assert_eq!(Log::judge(&dag).verdict.upgrades, vec![id(10)]);
        // Upgrades in a line all count.
        entry(&mut dag, 12, 12, &[11], &[1], Role::Admin, upgrade(5));
        assert_eq!(Log::judge(&dag).verdict.upgrades, vec![id(10), id(12)]);
    }
}

/// Admin 3 upgrades (5) concurrently with its removal by 1, its senior (6): the upgrade
/// counts for nothing. Member 2's write after the upgrade alone (7) was made by the app it
/// installed, where it counted: void. Its write after both (8) was made where the upgrade
/// was already overruled, by the app the context runs: it stands.
#[test]
fn a_write_made_by_the_app_of_an_overruled_upgrade_is_void() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[3, 1], Role::Admin, upgrade(1));
    entry(&mut dag, 6, 6, &[4], &[1], Role::Admin, remove(3));
    entry(&mut dag, 7, 7, &[5], &[2, 1], Role::Member, None);
    entry(&mut dag, 8, 8, &[5, 6], &[2, 1], Role::Member, None);
    let log = Log::judge(&dag);
    assert_eq!(log.verdict.upgrades, Vec::<DeltaId>::new());
    assert_eq!(log.verdict.void, BTreeSet::from([id(5), id(7)]));
    // A new write decides alike, on arrival.
    let on = |parents: &[u8]| Entry {
        parents: parents.iter().map(|p| id(*p)).collect(),
        ..dag[&id(7)].clone()
    };
    assert!(!log.made_by_running_app(&dag, &on(&[7])));
    assert!(log.made_by_running_app(&dag, &on(&[8])));
}

/// Admin 3's key, bound to root 20, rotates to key 9 (delta 6); 4, whom 3 invited, writes
/// after it (7); the old key 3 writes after it (8); the new key writes (10).
#[test]
fn a_rotation_hands_the_old_keys_place_to_the_new_one() {
    let mut dag = context();
    let root = SecretKey::from_seed([20; 32]);
    let (old, new) = (SecretKey::from_seed([3; 32]), SecretKey::from_seed([9; 32]));
    let grant = |key: &SecretKey| {
        SignedGrant::sign_local(
            tabnode_identity::grant::Grant {
                client_key: key.public(),
                scope: tabnode_identity::grant::Scope::All,
                capabilities: vec![],
                not_before: 0,
                expires_at: 1,
                nonce: tabnode_identity::grant::hex_nonce([1; 32]),
            },
            &root,
        )
    };
    let revocation = SignedRevocation::sign_local(
        tabnode_identity::grant::Revocation {
            client_key: old.public(),
            nonce: tabnode_identity::grant::hex_nonce([2; 32]),
        },
        &root,
    );
    let bind = MemberOp::Bind {
        root: root.public(),
        grant: Box::new(grant(&old)),
    };
    let rotate = MemberOp::Rotate {
        new: new.public(),
        root: root.public(),
        grant: Box::new(grant(&new)),
        revocation: Box::new(revocation),
        shares: vec![],
    };
    assert!(rotate.verify_root_statement(&old.public()).is_ok());
    assert!(
        rotate.verify_root_statement(&key(1)).is_err(),
        "only the old key rotates"
    );
    let mut put =
        |n_: u8, t, parents: &[u8], author: PublicKey, chain: Vec<PublicKey>, role, op| {
            dag.insert(
                id(n_),
                Entry {
                    parents: parents.iter().map(|p| id(*p)).collect(),
                    author,
                    timestamp: t,
                    cert_role: role,
                    chain,
                    admission: None,
                    op,
                },
            );
        };
    // Key 3 of `context()` stands for `old` here: re-key its deltas and 4's chain.
    put(
        3,
        3,
        &[2],
        old.public(),
        vec![old.public(), key(1)],
        Role::Admin,
        None,
    );
    put(
        4,
        4,
        &[3],
        key(4),
        vec![key(4), old.public(), key(1)],
        Role::Member,
        None,
    );
    put(
        5,
        5,
        &[4],
        old.public(),
        vec![old.public(), key(1)],
        Role::Admin,
        Some(bind),
    );
    put(
        6,
        6,
        &[5],
        old.public(),
        vec![old.public(), key(1)],
        Role::Admin,
        Some(rotate),
    );
    put(
        7,
        7,
        &[6],
        key(4),
        vec![key(4), old.public(), key(1)],
        Role::Member,
        None,
    );
    put(
        8,
        8,
        &[6],
        old.public(),
        vec![old.public(), key(1)],
        Role::Admin,
        None,
    );
    put(
        10,
        10,
        &[6],
        new.public(),
        vec![new.public(), key(1)],
        Role::Reader,
        None,
    );
    let log = Log::judge(&dag);
    let verdict = log.verdict();
    let named: Vec<u8> = verdict.void.iter().map(|d| d.0[0]).collect();
    assert_eq!(named, vec![8], "only the old key's later write");
    assert_eq!(
        verdict.roles.get(&new.public()),
        Some(&(Role::Admin, id(6)))
    );
    assert_eq!(verdict.roots.get(&new.public()), Some(&root.public()));
    assert_eq!(verdict.removed.get(&old.public()), Some(&id(6)));
}

#[test]
fn a_carried_binary_must_hash_to_the_app_it_names() {
    let op = MemberOp::SetApp {
        app_id: AppId::of_wasm(b"one"),
        migrate: None,
        wasm: b"another".to_vec(),
    };
    assert!(op.verify_root_statement(&key(1)).is_err());
    assert!(upgrade(1).unwrap().verify_root_statement(&key(1)).is_ok());
}

#[test]
fn removing_an_admin_cascades_to_its_invitees() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
    entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Member, None);
    entry(&mut dag, 7, 7, &[5], &[2, 1], Role::Member, None);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(
        verdict.void,
        BTreeSet::from([id(6)]),
        "4 came through 3; 2 did not"
    );
    // An admin gives 4 a role again: its later deltas stand, the cascade is undone for it.
    let mut dag2 = dag.clone();
    entry(
        &mut dag2,
        8,
        8,
        &[6, 7],
        &[1],
        Role::Admin,
        Some(MemberOp::SetRole {
            member: key(4),
            role: Role::Member,
        }),
    );
    entry(&mut dag2, 9, 9, &[8], &[4, 3, 1], Role::Member, None);
    let verdict = Log::judge(&dag2).verdict;
    assert!(
        !verdict.void.contains(&id(9)),
        "certified anew: {verdict:?}"
    );
    assert!(verdict.void.contains(&id(6)), "but not before");
}

#[test]
fn roles_count_after_their_operation_and_the_lesser_counts_concurrently() {
    let mut dag = context();
    // Admin 1 makes 2 a reader (5); 2 writes after it (6) and concurrently (7).
    entry(
        &mut dag,
        5,
        5,
        &[4],
        &[1],
        Role::Admin,
        Some(MemberOp::SetRole {
            member: key(2),
            role: Role::Reader,
        }),
    );
    entry(&mut dag, 6, 6, &[5], &[2, 1], Role::Member, None);
    entry(&mut dag, 7, 7, &[4], &[2, 1], Role::Member, None);
    assert_eq!(
        Log::judge(&dag).verdict.void,
        BTreeSet::from([id(6), id(7)])
    );
    // A reader made a member writes after the change, not before.
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[9, 1], Role::Reader, None);
    entry(
        &mut dag,
        6,
        6,
        &[4],
        &[1],
        Role::Admin,
        Some(MemberOp::SetRole {
            member: key(9),
            role: Role::Member,
        }),
    );
    entry(&mut dag, 7, 7, &[6], &[9, 1], Role::Reader, None);
    assert_eq!(Log::judge(&dag).verdict.void, BTreeSet::from([id(5)]));
}

/// Admins 1 (the creator) and 3 (whom 1 invited) remove each other at once: the senior's
/// removal counts, whichever timestamp either stamped (a removed admin crafting its
/// "earlier" counter-removal gains nothing), and the junior's does not.
#[test]
fn of_two_admins_removing_each_other_at_once_the_senior_wins_whatever_the_timestamps() {
    for (t5, t6) in [(10, 11), (11, 10), (5, 900), (900, 5)] {
        let mut dag = context();
        entry(&mut dag, 5, t5, &[4], &[3, 1], Role::Admin, remove(1));
        entry(&mut dag, 6, t6, &[4], &[1], Role::Admin, remove(3));
        // Each writes after its own removal of the other; 2, whom 1 invited, writes after
        // both (and stands with 1); 4, whom 3 invited, falls with 3.
        entry(&mut dag, 7, 1000, &[5], &[3, 1], Role::Admin, None);
        entry(&mut dag, 8, 1000, &[6], &[1], Role::Admin, None);
        entry(&mut dag, 9, 1001, &[5, 6], &[2, 1], Role::Member, None);
        entry(&mut dag, 10, 1002, &[9], &[4, 3, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3)], "{t5} {t6}");
        assert_eq!(verdict.applied_ops, vec![id(6)]);
        assert_eq!(
            verdict.void,
            BTreeSet::from([id(5), id(7), id(10)]),
            "the junior's operation and later deltas, and its invitee's, are void ({t5} {t6})"
        );
    }
}

/// Admins 3 and 5, both invited by 1 (one rank), remove each other at once: both lose,
/// and neither can win alone by its timestamp.
#[test]
fn of_two_admins_of_one_rank_removing_each_other_at_once_both_are_removed() {
    for (t6, t7) in [(10, 11), (11, 10)] {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
        entry(&mut dag, 6, t6, &[5], &[3, 1], Role::Admin, remove(5));
        entry(&mut dag, 7, t7, &[5], &[5, 1], Role::Admin, remove(3));
        entry(&mut dag, 8, 1000, &[6, 7], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3), key(5)], "{t6} {t7}");
        assert!(!verdict.void.contains(&id(8)), "1's invitee 2 stands");
    }
}

/// A removed admin's operations racing its removal by a senior count for nothing: 3
/// demotes its remover 1 and revokes 2's role, and 4 (whom 3 invited and made admin)
/// removes 1, all concurrently with 1's removal of 3. 1 stays admin, 2 keeps its role.
/// An operation 3 made before its removal counts.
#[test]
fn a_removed_admins_operations_racing_its_removal_by_a_senior_count_for_nothing() {
    let set_role = |member, role| {
        Some(MemberOp::SetRole {
            member: key(member),
            role,
        })
    };
    let mut dag = context();
    entry(
        &mut dag,
        5,
        5,
        &[4],
        &[3, 1],
        Role::Admin,
        set_role(2, Role::Member),
    );
    entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, remove(3));
    entry(
        &mut dag,
        7,
        7,
        &[5],
        &[3, 1],
        Role::Admin,
        set_role(1, Role::Reader),
    );
    entry(
        &mut dag,
        8,
        8,
        &[5],
        &[3, 1],
        Role::Admin,
        set_role(2, Role::Reader),
    );
    entry(&mut dag, 9, 9, &[5], &[4, 3, 1], Role::Admin, remove(1));
    entry(&mut dag, 10, 10, &[6, 7, 8, 9], &[1], Role::Admin, None);
    entry(&mut dag, 11, 11, &[10], &[2, 1], Role::Member, None);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.applied_ops, vec![id(5), id(6)]);
    let removed: Vec<_> = verdict.removed.keys().copied().collect();
    assert_eq!(removed, vec![key(3)]);
    assert_eq!(verdict.roles.get(&key(1)), None);
    assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Member, id(5))));
    assert!(!verdict.void.contains(&id(10)) && !verdict.void.contains(&id(11)));
    // Had 1 not removed 3, 3's demotion of 1 would count.
    dag.remove(&id(6));
    entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, None);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.roles.get(&key(1)), Some(&(Role::Reader, id(7))));
}

/// An admin's removal of a key its authority rests on (its inviter, up the chain) counts
/// for nothing, concurrent with anything or not: it would remove the admin itself by the
/// cascade, and a removed admin racing its removal would otherwise take down, at every
/// member that hears the counter-removal first, everyone its inviter invited. An admin an
/// admin certified anew no longer rests on its chain and may.
#[test]
fn removing_a_key_ones_authority_rests_on_counts_for_nothing() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[3, 1], Role::Admin, remove(1));
    entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Admin, remove(3));
    entry(&mut dag, 7, 7, &[6], &[2, 1], Role::Member, None);
    let verdict = Log::judge(&dag).verdict;
    assert!(verdict.removed.is_empty() && verdict.applied_ops.is_empty());
    assert!(verdict.void.is_empty(), "{verdict:?}");

    let mut dag = context();
    let anew = Some(MemberOp::SetRole {
        member: key(4),
        role: Role::Admin,
    });
    entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, anew);
    entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Admin, remove(3));
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.removed, BTreeMap::from([(key(3), id(6))]));
}

/// A cycle of three admins of one rank: 3 removes 5, 5 removes 6, 6 removes 3, all at
/// once: all three lose. Where the creator takes part, its removal of its invitee counts
/// and that invitee's does not.
#[test]
fn a_cycle_of_concurrent_removals_removes_every_side_of_one_rank() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
    entry(&mut dag, 6, 6, &[5], &[6, 1], Role::Admin, None);
    entry(&mut dag, 7, 9, &[6], &[3, 1], Role::Admin, remove(5));
    entry(&mut dag, 8, 7, &[6], &[5, 1], Role::Admin, remove(6));
    entry(&mut dag, 9, 6, &[6], &[6, 1], Role::Admin, remove(3));
    let verdict = Log::judge(&dag).verdict;
    let removed: Vec<_> = verdict.removed.keys().copied().collect();
    assert_eq!(removed, vec![key(3), key(5), key(6)]);

    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
    entry(&mut dag, 6, 9, &[5], &[1], Role::Admin, remove(3));
    entry(&mut dag, 7, 7, &[5], &[3, 1], Role::Admin, remove(5));
    entry(&mut dag, 8, 6, &[5], &[5, 1], Role::Admin, None);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.applied_ops, vec![id(6)]);
    let removed: Vec<_> = verdict.removed.keys().copied().collect();
    assert_eq!(removed, vec![key(3)]);
}

/// Whatever order deltas arrive in, and whatever timestamps their authors chose (here:
/// each stamped with its place in the order of arrival, as a clock would), a node that
/// grows its log delta by delta ends with the verdict of the whole DAG, and every order
/// ends with the same verdict.
#[test]
fn every_order_of_arrival_and_every_choice_of_timestamps_gives_one_verdict() {
    // Admins 1 and 3 remove each other (5, 6); member 2 writes concurrently (7); 1 writes
    // after its removal of 3 (8); 2 writes after all of it (9); 4, whom 3 invited, writes
    // after (10); 1 makes 2 a reader concurrently with everything (11); 3 makes 1 a reader
    // concurrently with everything (12).
    let deltas: Vec<Made> = vec![
        (5, vec![4], vec![3, 1], Role::Admin, remove(1)),
        (6, vec![4], vec![1], Role::Admin, remove(3)),
        (7, vec![4], vec![2, 1], Role::Member, None),
        (8, vec![6], vec![1], Role::Admin, None),
        (9, vec![5, 6, 7], vec![2, 1], Role::Member, None),
        (10, vec![9], vec![4, 3, 1], Role::Member, None),
        (
            11,
            vec![4],
            vec![1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(2),
                role: Role::Reader,
            }),
        ),
        (
            12,
            vec![4],
            vec![3, 1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(1),
                role: Role::Reader,
            }),
        ),
    ];
    let verdict = one_verdict_in_every_order(&deltas);
    // The senior admin 1 wins: 3 is removed, its operations racing the removal count for
    // nothing (1 stays admin), 4 falls with 3, and 2's writes are void by its demotion
    // (concurrent with all of them); 1's write and operations stand.
    let removed: Vec<_> = verdict.removed.keys().copied().collect();
    assert_eq!(removed, vec![key(3)]);
    assert_eq!(verdict.roles.get(&key(1)), None);
    assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Reader, id(11))));
    assert_eq!(verdict.void, [5, 7, 9, 10, 12].map(id).into());
}

/// A delta to add to [`context`]: (delta, parents, chain, role by certificate, operation).
type Made = (u8, Vec<u8>, Vec<u8>, Role, Option<MemberOp>);

/// Adds `deltas` to [`context`] in every order of arrival a node can see, each stamped with
/// its place in that order, growing the log delta by delta as a node does (judged anew after
/// an operation, or when the log asks): every order must end with the verdict of the whole
/// DAG, which is returned.
fn one_verdict_in_every_order(deltas: &[Made]) -> Verdict {
    let mut orders = Vec::new();
    let mut stack = vec![(Vec::<usize>::new(), BTreeSet::<u8>::from([1, 2, 3, 4]))];
    while let Some((order, have)) = stack.pop() {
        if order.len() == deltas.len() {
            orders.push(order);
            continue;
        }
        for (i, (n, parents, ..)) in deltas.iter().enumerate() {
            if !have.contains(n) && parents.iter().all(|p| have.contains(p)) {
                let (mut order, mut have) = (order.clone(), have.clone());
                order.push(i);
                have.insert(*n);
                stack.push((order, have));
            }
        }
    }
    assert!(orders.len() > 1, "{}", orders.len());
    let mut verdicts = BTreeSet::new();
    for order in orders {
        let mut dag = context();
        let mut log = Log::judge(&dag);
        for (place, i) in order.into_iter().enumerate() {
            let (n, parents, chain, role, op) = deltas[i].clone();
            let e = Entry {
                parents: parents.iter().map(|p| id(*p)).collect(),
                author: key(chain[0]),
                timestamp: 10 + place as u64,
                cert_role: role,
                chain: chain.iter().map(|k| key(*k)).collect(),
                admission: None,
                op,
            };
            if e.op.is_some() {
                dag.insert(id(n), e);
                log = Log::judge(&dag);
            } else {
                let stands = log.role_of_new(&e).is_some_and(Role::can_write);
                log.add(id(n), &e, stands);
                dag.insert(id(n), e);
                if log.needs_judging() {
                    log = Log::judge(&dag); // as the node does
                }
            }
        }
        assert_eq!(log.verdict(), &Log::judge(&dag).verdict);
        verdicts.insert(format!("{:?}", log.verdict()));
    }
    assert_eq!(verdicts.len(), 1, "{verdicts:#?}");
    let mut dag = context();
    for (n, parents, chain, role, op) in deltas.iter().cloned() {
        entry(&mut dag, n, 10, &parents, &chain, role, op);
    }
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdicts.into_iter().next(), Some(format!("{verdict:?}")));
    verdict
}

/// Two admins give 2 different roles at once: the lesser counts, whichever was stamped
/// later; a change made having seen both replaces them.
#[test]
fn of_concurrent_role_changes_the_lesser_counts_whatever_the_timestamps() {
    let set_role = |role| {
        Some(MemberOp::SetRole {
            member: key(2),
            role,
        })
    };
    for (t5, t6) in [(5, 6), (6, 5)] {
        let mut dag = context();
        entry(
            &mut dag,
            5,
            t5,
            &[4],
            &[1],
            Role::Admin,
            set_role(Role::Reader),
        );
        entry(
            &mut dag,
            6,
            t6,
            &[4],
            &[3, 1],
            Role::Admin,
            set_role(Role::Admin),
        );
        entry(&mut dag, 7, 7, &[5, 6], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Reader, id(5))));
        assert_eq!(verdict.void, BTreeSet::from([id(7)]), "{t5} {t6}");
        entry(
            &mut dag,
            8,
            8,
            &[7],
            &[1],
            Role::Admin,
            set_role(Role::Member),
        );
        entry(&mut dag, 9, 9, &[8], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Member, id(8))));
        assert!(!verdict.void.contains(&id(9)));
    }
}

#[test]
fn non_admins_operations_count_for_nothing() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[2, 1], Role::Member, remove(1));
    let verdict = Log::judge(&dag).verdict;
    assert!(verdict.removed.is_empty());
    assert!(verdict.applied_ops.is_empty());
}

#[test]
fn a_new_delta_by_a_removed_key_has_no_role() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
    let log = Log::judge(&dag);
    let new = |chain: &[u8], role| Entry {
        parents: vec![id(5)],
        author: key(chain[0]),
        timestamp: 9,
        cert_role: role,
        chain: chain.iter().map(|k| key(*k)).collect(),
        admission: None,
        op: None,
    };
    assert_eq!(log.role_of_new(&new(&[4, 3, 1], Role::Member)), None);
    assert_eq!(
        log.role_of_new(&new(&[2, 1], Role::Member)),
        Some(Role::Member)
    );
}

/// Growing the log delta by delta gives what judging the grown DAG gives.
#[test]
fn adding_deltas_one_by_one_agrees_with_judging_the_whole() {
    let mut dag = context();
    entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
    entry(
        &mut dag,
        6,
        6,
        &[1],
        &[1],
        Role::Admin,
        Some(MemberOp::SetRole {
            member: key(2),
            role: Role::Reader,
        }),
    );
    let mut log = Log::judge(&dag);
    for (n, parents, chain) in [
        (7, vec![5], vec![4, 3, 1]),
        (8, vec![6], vec![2, 1]),
        (9, vec![4], vec![1]),
        (10, vec![2], vec![2, 1]),
    ] {
        let e = Entry {
            parents: parents.iter().map(|p| id(*p)).collect(),
            author: key(chain[0]),
            timestamp: n as u64,
            cert_role: Role::Member,
            chain: chain.iter().map(|k| key(*k)).collect(),
            admission: None,
            op: None,
        };
        let stands = log.role_of_new(&e).is_some_and(Role::can_write);
        log.add(id(n), &e, stands);
        dag.insert(id(n), e);
        assert_eq!(log.verdict(), &Log::judge(&dag).verdict, "after {n}");
    }
    assert_eq!(
        log.verdict().void,
        BTreeSet::from([id(2), id(7), id(8), id(10)]),
        "2 is concurrent with its demotion"
    );
}
