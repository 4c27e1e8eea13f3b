//! A membership certificate nests one level per invitation (or rotation), and is decoded before
//! anything checks it: a deep enough one used to overflow the stack and abort the process. It is
//! now refused while it is decoded, past the chain limit verification already had, with a typed
//! error, whether decoded directly or arriving in a message to a node.

mod common;

use common::{node, refusals, TestNode};

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{
    context_topic, ChainTooDeep, DeltaBody, Invitation, InvitationGrant, MemberCert, Role,
    WireMessage, MAX_CHAIN, MAX_MESSAGE_BYTES,
};
use tabnode_types::{AppId, ContextId, Hash, SecretKey, Signature};

fn encode<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).unwrap()
}

fn splice(whole: &[u8], part: &[u8], with: &[u8]) -> Vec<u8> {
    let at = whole
        .windows(part.len())
        .position(|w| w == part)
        .expect("the part is in the whole");
    [&whole[..at], with, &whole[at + part.len()..]].concat()
}

/// A certificate one invitation away from its inviter's is encoded `head ‖ inviter ‖ tail`:
/// `head^n ‖ inviter ‖ tail^n` is a certificate nested `n` invitations deep, built as bytes
/// (a value that deep could not even be dropped without overflowing the stack).
struct Layers {
    head: Vec<u8>,
    inviter: Vec<u8>,
    tail: Vec<u8>,
}

impl Layers {
    fn of(cert: &MemberCert, inviter: &MemberCert) -> Self {
        let (cert, inviter) = (encode(cert), encode(inviter));
        let at = cert
            .windows(inviter.len())
            .position(|w| w == inviter)
            .unwrap();
        Self {
            head: cert[..at].to_vec(),
            tail: cert[at + inviter.len()..].to_vec(),
            inviter,
        }
    }

    fn nested(&self, levels: usize) -> Vec<u8> {
        [
            self.head.repeat(levels),
            self.inviter.clone(),
            self.tail.repeat(levels),
        ]
        .concat()
    }
}

fn too_deep<T: std::fmt::Debug>(decoded: Result<T, borsh::io::Error>) {
    let err = decoded.expect_err("refused");
    assert!(ChainTooDeep::in_error(&err), "{err}");
}

/// A real chain: the creator invites an admin, who invites the next, `levels` times.
fn chain(levels: usize) -> (MemberCert, SecretKey) {
    let mut key = SecretKey::from_seed([2; 32]);
    let mut cert = MemberCert::genesis(&SecretKey::from_seed([1; 32]), key.public());
    for level in 0..levels {
        let secret = [level as u8; 32];
        let invitation = Invitation::new(
            AppId([3; 32]),
            Role::Admin,
            (u64::MAX, 1),
            cert,
            &key,
            secret,
        )
        .unwrap();
        key = SecretKey::from_seed(blake3::hash(&secret).into());
        cert = invitation.redeem(key.public(), 1).unwrap();
    }
    (cert, key)
}

#[test]
fn a_certificate_past_the_chain_limit_is_a_typed_decode_error() {
    // The longest chain verification accepts decodes, as it is encoded.
    let (longest, _) = chain(MAX_CHAIN);
    longest.verify().unwrap();
    let bytes = encode(&longest);
    assert_eq!(borsh::from_slice::<MemberCert>(&bytes).unwrap(), longest);

    // One level more is refused when decoded (verification refused it already).
    let (longer, _) = chain(MAX_CHAIN + 1);
    assert!(longer.verify().is_err());
    too_deep(borsh::from_slice::<MemberCert>(&encode(&longer)));

    // And so are 5,000 levels (1.5 MB), a cert alone or an invitation's inviter.
    let (cert, _) = chain(1);
    let (inviter, _) = chain(0);
    let layers = Layers::of(&cert, &inviter);
    borsh::from_slice::<MemberCert>(&layers.nested(MAX_CHAIN)).unwrap();
    too_deep(borsh::from_slice::<MemberCert>(
        &layers.nested(MAX_CHAIN + 1),
    ));
    too_deep(borsh::from_slice::<MemberCert>(&layers.nested(5_000)));
    let tabnode_node::Issuance::Invited { invitation, .. } = &cert.issued else {
        unreachable!("an invited certificate")
    };
    let grant = encode(&**invitation);
    let deep_grant = splice(&grant, &encode(&inviter), &layers.nested(5_000));
    too_deep(borsh::from_slice::<InvitationGrant>(&deep_grant));
}

#[test]
fn a_deep_certificate_in_a_link_is_a_bad_invitation() {
    let (cert, key) = chain(MAX_CHAIN + 1);
    let secret = [77; 32];
    let link = Invitation::new(
        AppId([3; 32]),
        Role::Member,
        (u64::MAX, 1),
        cert,
        &key,
        secret,
    )
    .unwrap()
    .encode();
    let err = Invitation::decode(&link).unwrap_err();
    assert_eq!(err.kind(), "BadInvitation", "{err}");
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

/// A's context, and a key the test holds with a real certificate (A invited it).
fn context_with_member() -> (TestNode, ContextId, SecretKey, MemberCert) {
    let mut a = node(1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let key = SecretKey::from_seed([66; 32]);
    let cert = Invitation::decode(&a.invite(&ctx).unwrap())
        .unwrap()
        .redeem(key.public(), 1)
        .unwrap();
    a.take_outgoing();
    (a, ctx, key, cert)
}

#[test]
fn a_deep_certificate_in_a_message_is_refused_by_a_node_not_a_crash() {
    let (mut a, ctx, key, cert) = context_with_member();
    let before = block_on(a.checkpoint(&ctx)).unwrap();
    let creator = match &cert.issued {
        tabnode_node::Issuance::Invited { invitation, .. } => invitation.inviter.clone(),
        _ => unreachable!("an invited certificate"),
    };
    let layers = Layers::of(&cert, &creator);
    let delta = DeltaBody {
        context_id: ctx,
        parents: before.heads.clone(),
        author: key.public(),
        timestamp: 1,
        artifact: vec![0],
        root_hash: Hash([0; 32]),
        events: vec![],
        genesis: None,
        author_cert: cert.clone(),
        op: None,
    }
    .sign(&key);
    let deltas = WireMessage::Deltas(vec![delta]).encode();
    let request = WireMessage::PayloadRequest {
        context_id: ctx,
        hash: Hash([1; 32]),
        requester: Box::new(cert.clone()),
        signature: Signature([0; 64]),
    }
    .encode();
    // A delta whose author's certificate is 3,000 invitations deep (about 900 KB, whole), and
    // the same 5,000 deep (only the levels the decoder descends, 850 KB: what overflowed the
    // stack); a payload request whose requester's certificate is as deep.
    let whole = layers.nested(3_000);
    let descent = [layers.head.repeat(5_000), layers.inviter.clone()].concat();
    let messages = [
        splice(&deltas, &encode(&cert), &whole),
        splice(&deltas, &encode(&cert), &descent),
        splice(&request, &encode(&cert), &whole),
    ];
    refusals(&mut a);
    for message in messages {
        let sealed = a.seal_bytes_for(&ctx, &message).unwrap();
        assert!(sealed.len() <= MAX_MESSAGE_BYTES, "{} bytes", sealed.len());
        block_on(a.handle_message(&context_topic(&ctx), &sealed));
        let refused = refusals(&mut a);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "ChainTooDeep", "{refused:?}");
    }
    assert_eq!(block_on(a.checkpoint(&ctx)).unwrap(), before);
    // The node works on.
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
}
