//! The core driven by plain calls: no store (the test keeps the rows in a map and answers each
//! request itself), no executor, no clock but the times it gives.

use std::collections::BTreeMap;

use serde_json::json;
use tabnode_runtime::Limits;
use tabnode_store::{Namespace, Op, Store};
use tabnode_types::ContextId;

use super::*;
use crate::{ExecuteResult, FixedEnv};

const T0: u64 = 1_700_000_000_000_000_000;

/// What the operations in these tests give back.
type Result_ = Result<Box<dyn std::any::Any>, NodeError>;

type TestCore = Core<FixedEnv, Result_>;

fn kv_store() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/apps/dist/kv_store.wasm"
    );
    std::fs::read(path).expect("build the apps first: bash tests/apps/build.sh")
}

/// The rows the test keeps for the core: it answers each store request from them.
#[derive(Default, Clone, PartialEq, Debug)]
struct Rows(BTreeMap<(Namespace, Vec<u8>), Vec<u8>>);

impl Rows {
    fn with_prefix(&self, ns: Namespace, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.0
            .iter()
            .filter(|((n, k), _)| *n == ns && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    fn write(&mut self, batch: &Batch) {
        for op in batch.ops() {
            match op {
                Op::Put { ns, key, value } => {
                    self.0.insert((*ns, key.clone()), value.clone());
                }
                Op::Delete { ns, key } => {
                    self.0.remove(&(*ns, key.clone()));
                }
            }
        }
    }

    /// The answer to a read (a write is the test's to answer).
    fn read(&self, request: &Request) -> Answer {
        match request {
            Request::Get { ns, key } => Answer::Row(Ok(self.0.get(&(*ns, key.clone())).cloned())),
            Request::Scan { ns, prefix } => Answer::Rows(Ok(self.with_prefix(*ns, prefix))),
            Request::Last { ns, prefix } => Answer::Last(Ok(self.with_prefix(*ns, prefix).pop())),
            Request::Keys { ns, prefix, limit } => {
                let keys: Vec<_> = self
                    .with_prefix(*ns, prefix)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                Answer::Keys(Ok((keys.len() <= *limit).then_some(keys)))
            }
            other => panic!("not a read: {other:?}"),
        }
    }
}

/// What came out of the core while the test answered its reads: the writes it asked for
/// (answered by `commit`), and every other output.
struct Seen {
    writes: Vec<Batch>,
    others: Vec<Output<Result_>>,
}

/// Answers the core's reads from `rows` and its writes with `commit` (which writes them to
/// `rows` when it answers `Ok`), until it waits for nothing the test can give.
fn settle(
    core: &mut TestCore,
    rows: &mut Rows,
    mut commit: impl FnMut(&Batch) -> Result<(), StoreError>,
) -> Seen {
    let mut seen = Seen {
        writes: Vec::new(),
        others: Vec::new(),
    };
    while let Some(output) = core.poll_output() {
        let Output::Store { id, request } = output else {
            seen.others.push(output);
            continue;
        };
        let answer = match request {
            Request::Commit(batch) => {
                let done = commit(&batch);
                if done.is_ok() {
                    rows.write(&batch);
                }
                seen.writes.push(batch);
                Answer::Committed(done)
            }
            Request::CommitParts { mut first, .. } => {
                core.handle_input(Input::Stored {
                    id,
                    answer: Answer::Began,
                });
                first.append(core.take_rest(id).expect("the rest is made"));
                let done = commit(&first);
                if done.is_ok() {
                    rows.write(&first);
                }
                seen.writes.push(first);
                Answer::Committed(done)
            }
            read => rows.read(&read),
        };
        core.handle_input(Input::Stored { id, answer });
    }
    seen
}

fn run<T: 'static>(
    at: u64,
    op: impl AsyncFnOnce(&mut CoreNode<FixedEnv>) -> Result<T, NodeError> + 'static,
) -> Input<FixedEnv, Result_> {
    Input::Run {
        at,
        op: operation(move |node| {
            async move {
                op(node)
                    .await
                    .map(|t| Box::new(t) as Box<dyn std::any::Any>)
            }
            .boxed_local()
        }),
    }
}

fn done<T: 'static>(seen: &Seen) -> Result<&T, &NodeError> {
    let found = seen.others.iter().find_map(|o| match o {
        Output::Done(result) => Some(result),
        _ => None,
    });
    match found.expect("the operation ended") {
        Ok(value) => Ok(value.downcast_ref::<T>().expect("its type")),
        Err(e) => Err(e),
    }
}

fn publishes(seen: &Seen) -> usize {
    seen.others
        .iter()
        .filter(|o| matches!(o, Output::Transmit(Outgoing::Publish { .. })))
        .count()
}

/// An opened core with a kv-store context, and the rows it wrote.
fn opened() -> (TestCore, Rows, ContextId) {
    let mut rows = Rows::default();
    let mut core = TestCore::open(FixedEnv::new(7), Runtime::new(Limits::default()));
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert!(matches!(seen.others[..], [Output::Opened(Ok(()))]));
    core.handle_input(run(T0, async |node| {
        let app = node.install_app(&kv_store()).await?;
        node.create_context(app, serde_json::Value::Null).await
    }));
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    let context = *done::<ContextId>(&seen).unwrap();
    (core, rows, context)
}

fn set(at: u64, context: ContextId, key: &str) -> Input<FixedEnv, Result_> {
    let key = key.to_string();
    run(at, async move |node| {
        node.execute(&context, "set", json!({"key": key, "value": "v"}))
            .await
    })
}

#[test]
fn opening_reads_through_outputs_and_a_fresh_node_writes_its_key() {
    let mut core = TestCore::open(FixedEnv::new(1), Runtime::new(Limits::default()));
    assert!(core.is_busy());
    assert!(core.node().is_none(), "not open yet");
    let first = core.poll_output();
    assert!(
        matches!(
            first,
            Some(Output::Store {
                request: Request::Get { .. },
                ..
            })
        ),
        "opening starts by reading the store"
    );
    // Inputs given while it opens wait for it.
    core.handle_input(run(T0, async |node| Ok(node.public_key())));
    let Some(Output::Store { id, request }) = first else {
        unreachable!()
    };
    let mut rows = Rows::default();
    core.handle_input(Input::Stored {
        id,
        answer: rows.read(&request),
    });
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert!(matches!(seen.others[0], Output::Opened(Ok(()))));
    assert!(done::<tabnode_types::PublicKey>(&seen).is_ok());
    assert!(
        rows.0.keys().any(|(ns, _)| *ns == Namespace::Keys),
        "a fresh node keeps its key"
    );
    assert!(!core.is_busy());

    // A second core on the same rows is the same node.
    let key = core.node().unwrap().public_key();
    let mut again = TestCore::open(FixedEnv::new(2), Runtime::new(Limits::default()));
    settle(&mut again, &mut rows, |_| Ok(()));
    assert_eq!(again.node().unwrap().public_key(), key);
}

#[test]
fn a_call_is_published_and_answered_only_once_its_writes_are_durable() {
    let (mut core, mut rows, context) = opened();
    core.handle_input(set(T0 + 1, context, "a"));
    // Take the outputs one by one, answering reads, until the call asks to commit.
    let (id, batch) = loop {
        match core.poll_output().expect("the call asks for something") {
            Output::Store {
                id,
                request: Request::CommitParts { mut first, .. },
            } => {
                core.handle_input(Input::Stored {
                    id,
                    answer: Answer::Began,
                });
                first.append(core.take_rest(id).unwrap());
                break (id, first);
            }
            Output::Store {
                id,
                request: Request::Commit(batch),
            } => break (id, batch),
            Output::Store { id, request } => {
                let answer = rows.read(&request);
                core.handle_input(Input::Stored { id, answer });
            }
            Output::Transmit(_) | Output::Done(_) => panic!("sent or answered before durable"),
            _ => {}
        }
    };
    assert!(batch.namespaces().contains(&Namespace::Deltas));
    assert!(core.poll_output().is_none(), "it waits for the commit");
    assert!(core.is_busy());
    rows.write(&batch);
    core.handle_input(Input::Stored {
        id,
        answer: Answer::Committed(Ok(())),
    });
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert_eq!(publishes(&seen), 1, "the delta goes to the members");
    let result = done::<ExecuteResult>(&seen).unwrap();
    assert!(result.delta_id.is_some());
    // Its result comes last, after what it sent and told.
    assert!(matches!(seen.others.last(), Some(Output::Done(_))));
}

#[test]
fn a_commit_the_store_refuses_fails_the_call_and_sends_nothing() {
    let (mut core, mut rows, context) = opened();
    let before = rows.clone();
    core.handle_input(set(T0 + 1, context, "a"));
    let seen = settle(&mut core, &mut rows, |_| Err(StoreError::QuotaExceeded));
    assert!(
        seen.writes[0].namespaces().contains(&Namespace::Deltas),
        "the call asked to commit its delta first"
    );
    assert!(matches!(
        done::<ExecuteResult>(&seen),
        Err(NodeError::Store(StoreError::QuotaExceeded))
    ));
    assert_eq!(publishes(&seen), 0, "nothing of it is sent");
    // Only the failed call's audit record may be written after; no state, no delta.
    let written: Vec<_> = rows
        .0
        .keys()
        .filter(|k| !before.0.contains_key(k))
        .map(|(ns, _)| *ns)
        .collect();
    assert!(
        written.iter().all(|ns| *ns == Namespace::Audit),
        "only an audit record: {written:?}"
    );

    // The node goes on: the next call, with room on the disk, lands.
    core.handle_input(set(T0 + 2, context, "b"));
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert!(done::<ExecuteResult>(&seen).unwrap().delta_id.is_some());
    assert_eq!(publishes(&seen), 1);
}

#[test]
fn inputs_run_one_at_a_time_in_the_order_given() {
    let (mut core, mut rows, context) = opened();
    core.handle_input(set(T0 + 1, context, "first"));
    core.handle_input(set(T0 + 2, context, "second"));
    core.handle_input(run(T0 + 3, async move |node| {
        node.execute(&context, "get", json!({"key": "second"}))
            .await
    }));
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    let results: Vec<&ExecuteResult> = seen
        .others
        .iter()
        .filter_map(|o| match o {
            Output::Done(Ok(r)) => r.downcast_ref::<ExecuteResult>(),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].delta_id.is_some() && results[1].delta_id.is_some());
    assert_ne!(results[0].delta_id, results[1].delta_id);
    assert_eq!(
        results[2].output,
        json!("v"),
        "the read ran after both writes were durable"
    );
}

#[test]
fn timer_work_runs_on_a_timeout_input_at_the_time_it_gives() {
    let (mut core, mut rows, _context) = opened();
    // A new context's heads are due to be announced at once.
    let now = T0 + 1;
    assert!(core.poll_timeout().is_some_and(|due| due <= now));
    core.handle_input(Input::Timeout { at: now });
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert!(publishes(&seen) >= 1, "the heads are announced");
    let due = core.poll_timeout().expect("again later");
    assert!(due > now);

    core.handle_input(Input::Timeout { at: due - 1 });
    let early = settle(&mut core, &mut rows, |_| Ok(()));
    assert_eq!(publishes(&early), 0, "not due yet: nothing sent");
    assert_eq!(core.poll_timeout(), Some(due));

    core.handle_input(Input::Timeout { at: due });
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert!(publishes(&seen) >= 1, "announced again when due");
    assert!(core.poll_timeout().is_some_and(|next| next > due));
    assert_eq!(
        core.node().unwrap().now(),
        due,
        "the node's time is the input's"
    );
}

#[test]
fn a_wrong_or_unknown_answer_is_refused_without_harm() {
    let (mut core, rows, context) = opened();
    // An answer to a request never made is ignored.
    core.handle_input(Input::Stored {
        id: 9_999,
        answer: Answer::Row(Ok(None)),
    });
    assert!(core.poll_output().is_none());
    // An answer of the wrong kind is a store failure of that operation, not a panic.
    core.handle_input(set(T0 + 1, context, "a"));
    let mut failed = None;
    while let Some(output) = core.poll_output() {
        match output {
            Output::Store { id, request } => {
                let answer = match request {
                    Request::Commit(_) | Request::CommitParts { .. } => Answer::Row(Ok(None)),
                    read => rows.read(&read),
                };
                core.handle_input(Input::Stored { id, answer });
            }
            Output::Done(result) => failed = Some(result),
            _ => {}
        }
    }
    assert!(matches!(
        failed,
        Some(Err(NodeError::Store(StoreError::Backend(_))))
    ));
    assert!(!core.is_busy());
}

#[test]
fn many_reads_asked_together_all_come_back() {
    // More than `try_join_all` polls without being woken (it keeps many futures in a
    // `FuturesUnordered`): each answer must wake the read that waits for it.
    let (mut core, mut rows, _context) = opened();
    for i in 0..40u8 {
        rows.0.insert((Namespace::Meta, vec![b'x', i]), vec![i]);
    }
    // The node's own store, as its flows read it (`local.rs` reads a call's missed rows so).
    let store = core.io.clone();
    core.handle_input(run(T0 + 1, async move |_node| {
        let reads = (0..40u8).map(|i| {
            let store = store.clone();
            async move { store.get(Namespace::Meta, &[b'x', i]).await }
        });
        let values = futures::future::try_join_all(reads).await?;
        Ok(values.into_iter().flatten().flatten().collect::<Vec<u8>>())
    }));
    let seen = settle(&mut core, &mut rows, |_| Ok(()));
    assert_eq!(
        *done::<Vec<u8>>(&seen).unwrap(),
        (0..40).collect::<Vec<u8>>()
    );
}
