//! The node's store as requests and answers: what [`super::Core`] gives its node in place of a
//! real [`Store`].
//!
//! Each store operation the node makes becomes a [`Request`] with an id, which the core hands
//! out as an output; the operation waits until its [`Answer`] comes in as an input. The node's
//! code is unchanged (it is written against [`Store`]); only where its reads and writes go is.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use tabnode_store::{within, Batch, Namespace, Store, StoreError};

/// What the node asks of its store.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// [`Store::get`].
    Get { ns: Namespace, key: Vec<u8> },
    /// [`Store::scan_prefix`].
    Scan { ns: Namespace, prefix: Vec<u8> },
    /// [`Store::last_with_prefix`].
    Last { ns: Namespace, prefix: Vec<u8> },
    /// [`Store::keys_with_prefix`].
    Keys {
        ns: Namespace,
        prefix: Vec<u8>,
        limit: usize,
    },
    /// [`Store::commit`]: answered once the batch is durable.
    Commit(Batch),
    /// [`Store::commit_parts`]: `first` may be written at once; the node makes the rest of the
    /// batch when told [`Answer::Began`] and leaves it for [`super::Core::take_rest`], then
    /// waits for [`Answer::Committed`] of the whole.
    CommitParts { first: Batch, later: Vec<Namespace> },
}

/// A key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

/// What the store answered to a [`Request`] of the same id.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Row(Result<Option<Vec<u8>>, StoreError>),
    Rows(Result<Vec<Row>, StoreError>),
    Last(Result<Option<Row>, StoreError>),
    Keys(Result<Option<Vec<Vec<u8>>>, StoreError>),
    /// The writes of a [`Request::CommitParts`]'s `first` are under way: make the rest.
    Began,
    /// A commit's outcome (for `CommitParts`: of the whole).
    Committed(Result<(), StoreError>),
}

/// Requests asked and answers given, shared by the node's [`Io`] and the core.
#[derive(Default)]
pub(super) struct Exchange {
    next: u64,
    /// Asked, not yet handed out.
    pub(super) asked: VecDeque<(u64, Request)>,
    /// Handed out, not yet answered.
    pub(super) open: Vec<u64>,
    answers: Vec<(u64, Answer)>,
    /// Who waits for each answer: a request's future may sit among others (`try_join_all` of
    /// many reads) that are polled again only once woken.
    wakers: Vec<(u64, Waker)>,
    /// The rest of a batch in parts, made once its first part began.
    rests: Vec<(u64, Result<Batch, StoreError>)>,
}

/// Takes the entry of `id` out of a short list (a few requests are open at a time: lists,
/// not maps, keep the page's wasm smaller).
fn take<T>(list: &mut Vec<(u64, T)>, id: u64) -> Option<T> {
    let at = list.iter().position(|(open, _)| *open == id)?;
    Some(list.swap_remove(at).1)
}

impl Exchange {
    /// Takes the answer to `id`; gives back who waits for it, to wake once the exchange is let
    /// go of. `Err` if `id` was not asked or was answered already.
    pub(super) fn answer(&mut self, id: u64, answer: Answer) -> Result<Option<Waker>, ()> {
        let at = self.open.iter().position(|&open| open == id).ok_or(())?;
        if !matches!(answer, Answer::Began) {
            self.open.swap_remove(at);
        }
        self.answers.push((id, answer));
        Ok(take(&mut self.wakers, id))
    }

    /// The rest of a batch in parts whose first part began (see [`super::Core::take_rest`]).
    pub(super) fn take_rest(&mut self, id: u64) -> Option<Result<Batch, StoreError>> {
        take(&mut self.rests, id)
    }

    /// Forgets every request of an operation that will not be polled again (it panicked).
    pub(super) fn clear(&mut self) {
        *self = Exchange {
            next: self.next,
            ..Exchange::default()
        };
    }
}

/// The [`Store`] the core's node runs on: every operation is a request to the core's driver.
#[derive(Clone, Default)]
pub struct Io {
    pub(super) exchange: Rc<RefCell<Exchange>>,
}

impl Io {
    fn ask(&self, request: Request) -> u64 {
        let mut exchange = self.exchange.borrow_mut();
        let id = exchange.next;
        exchange.next += 1;
        exchange.asked.push_back((id, request));
        id
    }

    /// Waits for the answer to `id`.
    async fn answer(&self, id: u64) -> Answer {
        poll_fn(|cx| {
            let mut exchange = self.exchange.borrow_mut();
            match take(&mut exchange.answers, id) {
                Some(answer) => Poll::Ready(answer),
                None => {
                    take(&mut exchange.wakers, id);
                    exchange.wakers.push((id, cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
        .await
    }

    async fn request(&self, request: Request) -> Answer {
        let id = self.ask(request);
        self.answer(id).await
    }
}

/// An answer of the wrong kind: a driver's mistake, which the node sees as a store failure.
fn mismatch(_: &Answer) -> StoreError {
    StoreError::Backend("the driver answered a request with an answer of another kind".into())
}

impl Store for Io {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        match self.request(Request::Get { ns, key }).await {
            Answer::Row(row) => row,
            other => Err(mismatch(&other)),
        }
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_vec();
        match self.request(Request::Scan { ns, prefix }).await {
            Answer::Rows(rows) => rows,
            other => Err(mismatch(&other)),
        }
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_vec();
        match self.request(Request::Last { ns, prefix }).await {
            Answer::Last(row) => row,
            other => Err(mismatch(&other)),
        }
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        match self.request(Request::Commit(batch)).await {
            Answer::Committed(done) => done,
            other => Err(mismatch(&other)),
        }
    }

    async fn commit_parts(
        &self,
        first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Result<Batch, StoreError>,
    ) -> Result<(), StoreError> {
        let later = later.to_vec();
        let id = self.ask(Request::CommitParts {
            first,
            later: later.clone(),
        });
        match self.answer(id).await {
            Answer::Began => {}
            // The store failed before it began: the rest is not made.
            Answer::Committed(Err(e)) => return Err(e),
            other => return Err(mismatch(&other)),
        }
        let rest = rest().and_then(|rest| within(&rest, &later).map(|()| rest));
        self.exchange.borrow_mut().rests.push((id, rest));
        match self.answer(id).await {
            Answer::Committed(done) => done,
            other => Err(mismatch(&other)),
        }
    }

    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let prefix = prefix.to_vec();
        match self.request(Request::Keys { ns, prefix, limit }).await {
            Answer::Keys(keys) => keys,
            other => Err(mismatch(&other)),
        }
    }
}

/// Carries out `request` on a real store. For [`Request::CommitParts`], `rest` is asked for the
/// rest of the batch once `first`'s writes are under way.
pub async fn carry_out<S: Store>(
    store: &S,
    request: Request,
    rest: impl FnOnce() -> Result<Batch, StoreError>,
) -> Answer {
    match request {
        Request::Get { ns, key } => Answer::Row(store.get(ns, &key).await),
        Request::Scan { ns, prefix } => Answer::Rows(store.scan_prefix(ns, &prefix).await),
        Request::Last { ns, prefix } => Answer::Last(store.last_with_prefix(ns, &prefix).await),
        Request::Keys { ns, prefix, limit } => {
            Answer::Keys(store.keys_with_prefix(ns, &prefix, limit).await)
        }
        Request::Commit(batch) => Answer::Committed(store.commit(batch).await),
        Request::CommitParts { first, later } => {
            Answer::Committed(store.commit_parts(first, &later, rest).await)
        }
    }
}
