//! The behaviour every [`Store`] backend must have; run natively on memory and in headless
//! Chromium on IndexedDB.

use std::future::Future;

use crate::{Batch, Namespace, Store, StoreError, PARTED_MAX, WHOLE_MAX};

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
    big_values_read_back_whole(&fresh().await).await;
    big_values_overwritten_and_deleted_leave_only_the_logical_rows(&fresh().await).await;
    big_values_in_batches_are_all_or_nothing(&fresh().await).await;
    big_values_edited_read_back_whole(&fresh().await).await;
}

/// `len` bytes that differ with `seed` and along the value (a part out of place shows).
pub fn big(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8) ^ seed)
        .collect()
}

/// Values at and over the size IndexedDB stores in parts ([`WHOLE_MAX`]), and over the size
/// it stores whole again outside the state namespace ([`PARTED_MAX`]), beside small ones: each
/// reads back whole, by key, by prefix and as the last of a prefix, and keys are listed once.
pub async fn big_values_read_back_whole(store: &impl Store) {
    let ns = Namespace::State;
    let rows: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"a".to_vec(), b"small".to_vec()),
        (b"k".to_vec(), big(WHOLE_MAX, 1)),
        (b"k\x00".to_vec(), big(WHOLE_MAX + 1, 2)),
        (b"k\x00\x00".to_vec(), big(2 * WHOLE_MAX, 3)),
        (b"k\x01".to_vec(), big(3 * WHOLE_MAX + 7, 4)),
        (b"k\xff".to_vec(), vec![]),
        (b"k\xff\xff".to_vec(), big(PARTED_MAX, 5)),
        (b"l".to_vec(), big(PARTED_MAX + 1, 6)),
    ];
    let mut batch = Batch::new();
    for (key, value) in rows.iter().rev() {
        batch.put_mut(ns, key, value.clone());
    }
    store.commit(batch).await.unwrap();
    for (key, value) in &rows {
        let read = store.get(ns, key).await.unwrap();
        assert!(
            read.as_ref() == Some(value),
            "{key:?}: {:?} bytes",
            read.map(|v| v.len())
        );
    }
    let scanned = store.scan_prefix(ns, b"").await.unwrap();
    assert!(scanned == rows, "a scan reads exactly the rows, whole");
    let k = store.scan_prefix(ns, b"k").await.unwrap();
    assert!(k[..] == rows[1..7]);
    assert_eq!(
        store.keys_with_prefix(ns, b"k", 10).await.unwrap(),
        Some(rows[1..7].iter().map(|(k, _)| k.clone()).collect())
    );
    let last = store.last_with_prefix(ns, b"k\x00").await.unwrap();
    assert!(
        last.as_ref() == Some(&rows[3]),
        "the last of a prefix, whole"
    );
    let last = store.last_with_prefix(ns, b"").await.unwrap();
    assert!(last.as_ref() == Some(&rows[7]));
    assert_eq!(store.get(Namespace::Deltas, b"k\x01").await.unwrap(), None);
}

/// A big value overwritten by a smaller one (big or small), a small one by a big one, and
/// deletes: every read sees exactly the last value written, in each namespace on its own.
pub async fn big_values_overwritten_and_deleted_leave_only_the_logical_rows(store: &impl Store) {
    let ns = Namespace::State;
    let put = |ns, key: &'static [u8], value: Vec<u8>| async move {
        store
            .commit(Batch::new().put(ns, key, value))
            .await
            .unwrap();
    };
    let expect = |ns, key: &'static [u8], value: Option<Vec<u8>>| async move {
        let read = store.get(ns, key).await.unwrap();
        assert!(
            read == value,
            "{key:?}: read {:?} bytes, wrote {:?}",
            read.map(|v| v.len()),
            value.map(|v| v.len())
        );
        let scanned: Vec<_> = store.scan_prefix(ns, key).await.unwrap();
        let want: Vec<_> = value.into_iter().map(|v| (key.to_vec(), v)).collect();
        assert!(
            scanned == want,
            "{key:?}: the scan sees the one logical row"
        );
    };
    // Each step's value, in turn, under one key: big to small, small to big, big to a
    // smaller big one (fewer parts), to a bigger one, to one stored whole again and back.
    let steps = [
        big(3 * WHOLE_MAX + 11, 1),
        b"small".to_vec(),
        big(4 * WHOLE_MAX + 1, 2),
        big(WHOLE_MAX + 5, 3),
        big(WHOLE_MAX, 4),
        big(2 * WHOLE_MAX + 9, 5),
        big(PARTED_MAX + 3, 6),
        big(WHOLE_MAX + 2, 7),
        vec![],
    ];
    for value in steps {
        put(ns, b"x", value.clone()).await;
        expect(ns, b"x", Some(value)).await;
    }
    // The same key, big, in another namespace: its own value.
    put(ns, b"y", big(2 * WHOLE_MAX + 1, 8)).await;
    put(Namespace::Deltas, b"y", big(3 * WHOLE_MAX + 1, 9)).await;
    store.commit(Batch::new().delete(ns, b"y")).await.unwrap();
    expect(ns, b"y", None).await;
    expect(Namespace::Deltas, b"y", Some(big(3 * WHOLE_MAX + 1, 9))).await;
    put(ns, b"y", b"back".to_vec()).await;
    expect(ns, b"y", Some(b"back".to_vec())).await;
    put(ns, b"y", big(WHOLE_MAX + 1, 10)).await;
    expect(ns, b"y", Some(big(WHOLE_MAX + 1, 10))).await;
    store
        .commit(
            Batch::new()
                .delete(Namespace::Deltas, b"y")
                .delete(ns, b"x"),
        )
        .await
        .unwrap();
    expect(Namespace::Deltas, b"y", None).await;
    assert_eq!(
        store.keys_with_prefix(ns, b"", 10).await.unwrap(),
        Some(vec![b"y".to_vec()])
    );
}

/// A big value rewritten with small edits (as calimero-storage rewrites a collection's index:
/// a count near the start, an entry added at the end, hashes changed), grown, shrunk, edited
/// twice in one batch, and edited in a batch in parts that fails: each reads back as written
/// (IndexedDB writes only the parts that changed, the other stores the whole value).
pub async fn big_values_edited_read_back_whole(store: &impl Store) {
    let ns = Namespace::State;
    let put = |value: Vec<u8>| async move {
        store
            .commit(Batch::new().put(ns, b"i", value))
            .await
            .unwrap();
    };
    let read = |value: Vec<u8>| async move {
        assert!(
            store.get(ns, b"i").await.unwrap() == Some(value),
            "read back as written"
        );
    };
    let mut value = big(3 * WHOLE_MAX + 123, 1);
    type Edit<'a> = &'a dyn Fn(&mut Vec<u8>);
    let edits: [Edit; 6] = [
        &|v| v[66] ^= 0xff,
        &|v| v.extend_from_slice(&big(100, 2)),
        &|v| {
            let mid = v.len() / 2;
            v[mid] ^= 1;
            let end = v.len() - 1;
            v[end] ^= 1;
        },
        &|v| v.truncate(WHOLE_MAX + 1),
        &|v| v.extend_from_slice(&big(2 * WHOLE_MAX, 3)),
        &|_| {},
    ];
    for edit in edits {
        edit(&mut value);
        put(value.clone()).await;
        read(value.clone()).await;
    }
    // Two edits of it in one batch: the second is what stays.
    let mut first = value.clone();
    first[10] ^= 1;
    let mut second = first.clone();
    second[WHOLE_MAX + 10] ^= 1;
    let batch = Batch::new()
        .put(ns, b"i", first)
        .put(ns, b"i", second.clone());
    store.commit(batch).await.unwrap();
    read(second.clone()).await;
    // An edit in a batch that fails is not written, nor taken for written: the next edit,
    // which keeps the failed one's change, reads back whole.
    let mut failed = second.clone();
    failed[3 * WHOLE_MAX] ^= 1;
    let refused = store
        .commit_parts(Batch::new().put(ns, b"i", failed.clone()), &[ns], || {
            Err(StoreError::Backend("refused".into()))
        })
        .await;
    assert!(refused.is_err());
    read(second).await;
    let mut next = failed;
    next[20] ^= 1;
    put(next.clone()).await;
    read(next).await;
}

/// Writes of big values in one batch apply in order, and with the rest of the batch or not at
/// all: a batch in parts whose later part fails leaves the big value it overwrote (or
/// deleted) as it was.
pub async fn big_values_in_batches_are_all_or_nothing(store: &impl Store) {
    let ns = Namespace::State;
    let old = big(2 * WHOLE_MAX + 3, 1);
    store
        .commit(
            Batch::new()
                .put(ns, b"a", big(3 * WHOLE_MAX, 2))
                .put(ns, b"a", b"then small".to_vec())
                .put(ns, b"b", b"small first".to_vec())
                .put(ns, b"b", old.clone())
                .put(ns, b"c", big(WHOLE_MAX + 1, 3))
                .delete(ns, b"c"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(ns, b"a").await.unwrap(),
        Some(b"then small".to_vec())
    );
    assert!(store.get(ns, b"b").await.unwrap() == Some(old.clone()));
    assert_eq!(store.get(ns, b"c").await.unwrap(), None);
    for (first, rest) in [
        (Batch::new().put(ns, b"b", b"small".to_vec()), Batch::new()),
        (Batch::new().delete(ns, b"b"), Batch::new()),
        (
            Batch::new().put(ns, b"b", big(WHOLE_MAX + 1, 4)),
            Batch::new().put(ns, b"d", big(5 * WHOLE_MAX, 5)),
        ),
    ] {
        let failed = store
            .commit_parts(first.clone(), &[ns], || {
                Err(StoreError::Backend("signing failed".into()))
            })
            .await;
        assert!(failed.is_err());
        let outside = store
            .commit_parts(first, &[Namespace::Audit], || {
                Ok(rest.put(Namespace::Deltas, b"d", b"d".to_vec()))
            })
            .await;
        assert!(outside.is_err());
        assert!(
            store.get(ns, b"b").await.unwrap() == Some(old.clone()),
            "the big value is as it was"
        );
        assert_eq!(store.get(ns, b"d").await.unwrap(), None);
    }
    store
        .commit_parts(
            Batch::new().put(ns, b"b", big(WHOLE_MAX + 1, 6)),
            &[ns, Namespace::Audit],
            || {
                Ok(Batch::new()
                    .put(ns, b"d", big(5 * WHOLE_MAX, 7))
                    .put(Namespace::Audit, b"r", b"r".to_vec())
                    .put(ns, b"b", big(2 * WHOLE_MAX + 1, 8)))
            },
        )
        .await
        .unwrap();
    assert!(store.get(ns, b"b").await.unwrap() == Some(big(2 * WHOLE_MAX + 1, 8)));
    assert!(store.get(ns, b"d").await.unwrap() == Some(big(5 * WHOLE_MAX, 7)));
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
