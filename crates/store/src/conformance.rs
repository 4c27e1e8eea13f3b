//! The behaviour every [`Store`] backend must have; run natively on memory and in headless
//! Chromium on IndexedDB.

use std::future::Future;

use crate::{Batch, Namespace, Store};

fn rows(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// Runs every check, each on a fresh store from `fresh`.
pub async fn run_all<S: Store, F: Future<Output = S>>(fresh: impl Fn() -> F) {
    get_put_overwrite_delete(&fresh().await).await;
    scan_prefix_bounds(&fresh().await).await;
    keys_with_prefix_bounds_and_limit(&fresh().await).await;
    last_with_prefix_bounds(&fresh().await).await;
    namespaces_are_isolated(&fresh().await).await;
    batches_span_namespaces_and_keep_order(&fresh().await).await;
    a_batch_in_parts_is_written_whole_or_not_at_all(&fresh().await).await;
}

pub async fn get_put_overwrite_delete(store: &impl Store) {
    let ns = Namespace::State;
    assert_eq!(store.get(ns, b"k").await.unwrap(), None);
    store.commit(Batch::new()).await.unwrap();
    store
        .commit(Batch::new().put(ns, b"k", b"v1".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.get(ns, b"k").await.unwrap(), Some(b"v1".to_vec()));
    store
        .commit(Batch::new().put(ns, b"k", b"v2".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.get(ns, b"k").await.unwrap(), Some(b"v2".to_vec()));
    store
        .commit(Batch::new().put(ns, b"empty", vec![]))
        .await
        .unwrap();
    assert_eq!(store.get(ns, b"empty").await.unwrap(), Some(vec![]));
    store
        .commit(Batch::new().delete(ns, b"k").delete(ns, b"never"))
        .await
        .unwrap();
    assert_eq!(store.get(ns, b"k").await.unwrap(), None);
}

pub async fn scan_prefix_bounds(store: &impl Store) {
    let ns = Namespace::Deltas;
    let keys: [&[u8]; 8] = [
        b"a",
        b"ab",
        b"ab\x00",
        b"ab\xff",
        b"ab\xff\xff",
        b"ac",
        b"b",
        b"\xff\xff",
    ];
    let mut batch = Batch::new();
    for k in keys.iter().rev() {
        batch.put_mut(ns, k, k.to_vec());
    }
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.scan_prefix(ns, b"ab").await.unwrap(),
        rows(&[
            (b"ab", b"ab"),
            (b"ab\x00", b"ab\x00"),
            (b"ab\xff", b"ab\xff"),
            (b"ab\xff\xff", b"ab\xff\xff")
        ])
    );
    assert_eq!(
        store.scan_prefix(ns, b"ab\xff").await.unwrap(),
        rows(&[(b"ab\xff", b"ab\xff"), (b"ab\xff\xff", b"ab\xff\xff")])
    );
    assert_eq!(
        store.scan_prefix(ns, b"\xff").await.unwrap(),
        rows(&[(b"\xff\xff", b"\xff\xff")])
    );
    assert_eq!(store.scan_prefix(ns, b"zz").await.unwrap(), rows(&[]));
    let all = store.scan_prefix(ns, b"").await.unwrap();
    assert_eq!(
        all.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(),
        keys.to_vec()
    );
}

pub async fn keys_with_prefix_bounds_and_limit(store: &impl Store) {
    let ns = Namespace::State;
    let mut batch = Batch::new();
    for k in [&b"a"[..], b"ab", b"ab\x00", b"ab\xff", b"ac", b"\xff\xff"] {
        batch.put_mut(ns, k, vec![7; 10]);
    }
    store.commit(batch).await.unwrap();
    let keys = |prefix: &'static [u8], limit| async move {
        store.keys_with_prefix(ns, prefix, limit).await.unwrap()
    };
    let ab: Vec<Vec<u8>> = vec![b"ab".to_vec(), b"ab\x00".to_vec(), b"ab\xff".to_vec()];
    assert_eq!(keys(b"ab", 3).await, Some(ab.clone()));
    assert_eq!(keys(b"ab", 100).await, Some(ab));
    assert_eq!(keys(b"ab", 2).await, None, "more than the limit");
    assert_eq!(keys(b"zz", 0).await, Some(vec![]));
    assert_eq!(keys(b"\xff", 1).await, Some(vec![b"\xff\xff".to_vec()]));
    assert_eq!(keys(b"", 6).await.map(|k| k.len()), Some(6));
    assert_eq!(
        store
            .keys_with_prefix(Namespace::Deltas, b"", 10)
            .await
            .unwrap(),
        Some(vec![]),
        "another namespace's keys are not listed"
    );
}

pub async fn last_with_prefix_bounds(store: &impl Store) {
    let ns = Namespace::Audit;
    let last = |prefix: &'static [u8]| async move {
        store
            .last_with_prefix(ns, prefix)
            .await
            .unwrap()
            .map(|(k, _)| k)
    };
    assert_eq!(last(b"").await, None);
    let mut batch = Batch::new().put(Namespace::Deltas, b"b\xff\xff", vec![]);
    for k in [
        &b"a"[..],
        b"ab",
        b"ab\x00",
        b"ab\xff",
        b"ab\xff\xff",
        b"ac",
        b"b",
    ] {
        batch.put_mut(ns, k, k.to_vec());
    }
    store.commit(batch).await.unwrap();
    assert_eq!(last(b"ab").await, Some(b"ab\xff\xff".to_vec()));
    assert_eq!(last(b"ab\xff\xff").await, Some(b"ab\xff\xff".to_vec()));
    assert_eq!(last(b"a").await, Some(b"ac".to_vec()));
    assert_eq!(last(b"aa").await, None);
    assert_eq!(
        last(b"").await,
        Some(b"b".to_vec()),
        "not another namespace's key"
    );
    assert_eq!(
        store.last_with_prefix(ns, b"ac").await.unwrap(),
        Some((b"ac".to_vec(), b"ac".to_vec()))
    );
}

pub async fn namespaces_are_isolated(store: &impl Store) {
    store
        .commit(
            Batch::new()
                .put(Namespace::State, b"k", b"state".to_vec())
                .put(Namespace::Private, b"k", b"private".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(Namespace::State, b"k").await.unwrap(),
        Some(b"state".to_vec())
    );
    assert_eq!(
        store.get(Namespace::Private, b"k").await.unwrap(),
        Some(b"private".to_vec())
    );
    assert_eq!(store.get(Namespace::Apps, b"k").await.unwrap(), None);
    assert_eq!(
        store.scan_prefix(Namespace::Meta, b"").await.unwrap(),
        rows(&[])
    );
}

pub async fn batches_span_namespaces_and_keep_order(store: &impl Store) {
    let batch = Batch::new()
        .put(Namespace::Contexts, b"c", b"1".to_vec())
        .put(Namespace::Deltas, b"d", b"2".to_vec())
        .put(Namespace::Deltas, b"d", b"3".to_vec())
        .put(Namespace::Keys, b"gone", b"x".to_vec())
        .delete(Namespace::Keys, b"gone");
    assert_eq!(
        batch.namespaces(),
        vec![Namespace::Keys, Namespace::Contexts, Namespace::Deltas]
    );
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.get(Namespace::Contexts, b"c").await.unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(
        store.get(Namespace::Deltas, b"d").await.unwrap(),
        Some(b"3".to_vec()),
        "later ops win"
    );
    assert_eq!(store.get(Namespace::Keys, b"gone").await.unwrap(), None);
}

/// [`Store::commit_parts`]: both parts land, later writes after earlier ones; a later part that
/// fails, or writes a namespace it did not name, leaves nothing of either part.
pub async fn a_batch_in_parts_is_written_whole_or_not_at_all(store: &impl Store) {
    use crate::StoreError;
    let first = || {
        Batch::new()
            .put(Namespace::State, b"row", vec![1; 70_000])
            .put(Namespace::State, b"gone", b"x".to_vec())
    };
    let failed = store
        .commit_parts(first(), &[Namespace::Audit], || {
            Err(StoreError::Backend("signing failed".into()))
        })
        .await;
    assert_eq!(failed, Err(StoreError::Backend("signing failed".into())));
    let outside = store
        .commit_parts(first(), &[Namespace::Audit], || {
            Ok(Batch::new().put(Namespace::Deltas, b"d", b"d".to_vec()))
        })
        .await;
    assert!(
        matches!(outside, Err(StoreError::Backend(_))),
        "{outside:?}"
    );
    for (ns, key) in [
        (Namespace::State, &b"row"[..]),
        (Namespace::State, b"gone"),
        (Namespace::Deltas, b"d"),
    ] {
        assert_eq!(
            store.get(ns, key).await.unwrap(),
            None,
            "nothing was written"
        );
    }
    store
        .commit_parts(first(), &[Namespace::Audit, Namespace::State], || {
            Ok(Batch::new()
                .put(Namespace::Audit, b"record", b"r".to_vec())
                .delete(Namespace::State, b"gone"))
        })
        .await
        .unwrap();
    assert_eq!(
        store.get(Namespace::State, b"row").await.unwrap(),
        Some(vec![1; 70_000])
    );
    assert_eq!(store.get(Namespace::State, b"gone").await.unwrap(), None);
    assert_eq!(
        store.get(Namespace::Audit, b"record").await.unwrap(),
        Some(b"r".to_vec())
    );
}
