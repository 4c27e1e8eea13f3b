//! Invitations (`MemberOp::Admit`) racing each other, a revocation or their expiry.

use super::*;

/// An invitation for `uses` members that admin 1 made, expiring at 100, and its invite key.
fn invitation(uses: u32) -> (crate::membership::Invitation, PublicKey) {
    let admin = SecretKey::from_seed([1; 32]);
    let cert = MemberCert::genesis(&admin, admin.public());
    let link = crate::membership::Invitation::new(
        AppId([3; 32]),
        Role::Member,
        (100, uses),
        cert,
        &admin,
        [9; 32],
    )
    .unwrap();
    (link, SecretKey::from_seed([9; 32]).public())
}

/// Delta `n` at `t` on `parents`: member `by` admits key `joiner` with `link`.
#[allow(clippy::too_many_arguments)]
fn admit(
    dag: &mut HashMap<DeltaId, Entry>,
    n: u8,
    t: u64,
    parents: &[u8],
    by: u8,
    joiner: u8,
    link: &crate::membership::Invitation,
) {
    let cert = link.redeem(key(joiner), 1).unwrap();
    let chain: Vec<u8> = if by == 1 { vec![1] } else { vec![by, 1] };
    let role = if by == 1 { Role::Admin } else { Role::Member };
    let op = MemberOp::Admit {
        member: key(joiner),
        cert: Box::new(cert),
    };
    entry(dag, n, t, parents, &chain, role, Some(op));
}

/// A write by `joiner`, redeemed from the invitation `invite_key`.
fn joiner_writes(
    dag: &mut HashMap<DeltaId, Entry>,
    n: u8,
    parents: &[u8],
    joiner: u8,
    invite_key: PublicKey,
) {
    entry(dag, n, 50, parents, &[joiner, 1], Role::Member, None);
    dag.get_mut(&id(n)).unwrap().admission = Some(invite_key);
}

/// A single-use invitation: two members admit different keys at once; neither counts,
/// whichever was stamped first, and what both keys write is void. An admission made having
/// seen the race counts. Two members admitting the same key at once both count.
#[test]
fn concurrent_admissions_of_different_keys_beyond_uses_cancel_whatever_the_timestamps() {
    let (link, invite_key) = invitation(1);
    for (t10, t11) in [(10, 11), (11, 10)] {
        let mut dag = context();
        admit(&mut dag, 10, t10, &[4], 1, 7, &link);
        admit(&mut dag, 11, t11, &[4], 2, 8, &link);
        joiner_writes(&mut dag, 12, &[10], 7, invite_key);
        joiner_writes(&mut dag, 13, &[11], 8, invite_key);
        let verdict = Log::judge(&dag).verdict;
        assert!(verdict.admitted.is_empty(), "{:?}", verdict.admitted);
        assert!(!verdict.applied_ops.contains(&id(10)));
        assert!(!verdict.applied_ops.contains(&id(11)));
        assert!(verdict.void.contains(&id(12)) && verdict.void.contains(&id(13)));

        // Member 3 saw both and admits 8: that counts, and 8 writes after it.
        admit(&mut dag, 14, 20, &[12, 13], 3, 8, &link);
        joiner_writes(&mut dag, 15, &[14], 8, invite_key);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.admitted.keys().collect::<Vec<_>>(), [&key(8)]);
        assert_eq!(verdict.invitation_uses.get(&invite_key), Some(&1));
        assert!(!verdict.void.contains(&id(15)));
        assert!(verdict.void.contains(&id(12)));
    }
    let mut dag = context();
    admit(&mut dag, 10, 10, &[4], 1, 7, &link);
    admit(&mut dag, 11, 11, &[4], 2, 7, &link);
    joiner_writes(&mut dag, 12, &[10], 7, invite_key);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(
        verdict.admitted[&key(7)],
        (invite_key, vec![id(10), id(11)])
    );
    assert!(!verdict.void.contains(&id(12)));
}

/// A revocation concurrent with an admission voids it (revocation wins the race); one made
/// after the admission leaves it; an admission after it does not count. An admission
/// stamped after the expiry does not count.
#[test]
fn a_revocation_concurrent_with_an_admission_wins() {
    let (link, invite_key) = invitation(2);
    let revoke = || {
        Some(MemberOp::RevokeInvitation {
            invitation: invite_key,
        })
    };
    let mut dag = context();
    admit(&mut dag, 10, 10, &[4], 2, 7, &link);
    entry(&mut dag, 11, 5, &[4], &[1], Role::Admin, revoke());
    joiner_writes(&mut dag, 12, &[10], 7, invite_key);
    let verdict = Log::judge(&dag).verdict;
    assert!(verdict.admitted.is_empty());
    assert!(verdict.void.contains(&id(12)));
    assert_eq!(verdict.revoked_invitations[&invite_key], id(11));

    let mut dag = context();
    admit(&mut dag, 10, 10, &[4], 2, 7, &link);
    entry(&mut dag, 11, 11, &[10], &[1], Role::Admin, revoke());
    admit(&mut dag, 12, 12, &[11], 3, 8, &link);
    joiner_writes(&mut dag, 13, &[11], 7, invite_key);
    let verdict = Log::judge(&dag).verdict;
    assert_eq!(verdict.admitted.keys().collect::<Vec<_>>(), [&key(7)]);
    assert!(!verdict.void.contains(&id(13)));

    let mut dag = context();
    admit(&mut dag, 10, 100, &[4], 2, 7, &link);
    let verdict = Log::judge(&dag).verdict;
    assert!(verdict.admitted.is_empty());
}
