//! What a window computes: incremental aggregation, reduction, or a function
//! over all the window's elements.

use std::marker::PhantomData;

use sluice_state::{StateOption, StateValue, StateVec};

use crate::{Data, ExchangeData, Rec};

/// Incremental aggregation with an accumulator (Flink's `AggregateFunction`).
pub trait AggregateFunction<T>: Clone + Send + Sync + 'static {
    /// Kept in state, so checkpoints encode it.
    type Acc: Clone + StateValue;
    type Out;
    fn create_accumulator(&self) -> Self::Acc;
    fn add(&self, value: &T, acc: &mut Self::Acc);
    fn get_result(&self, acc: &Self::Acc) -> Self::Out;
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
}

/// Counts elements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, _value: &T, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// The second phase of a two-phase aggregation: merges the partial
/// accumulators `(key, accumulator)` that the first phase folded before the
/// key exchange, so that the result is `function`'s over all the records.
pub struct MergeAccumulators<T, A> {
    pub function: A,
    _input: PhantomData<fn(T)>,
}

impl<T, A> MergeAccumulators<T, A> {
    pub fn new(function: A) -> Self {
        MergeAccumulators {
            function,
            _input: PhantomData,
        }
    }
}

impl<T, A: Clone> Clone for MergeAccumulators<T, A> {
    fn clone(&self) -> Self {
        MergeAccumulators::new(self.function.clone())
    }
}

impl<K, T, A> AggregateFunction<(K, A::Acc)> for MergeAccumulators<T, A>
where
    T: 'static,
    A: AggregateFunction<T>,
{
    type Acc = A::Acc;
    type Out = A::Out;
    fn create_accumulator(&self) -> A::Acc {
        self.function.create_accumulator()
    }
    #[inline]
    fn add(&self, partial: &(K, A::Acc), acc: &mut A::Acc) {
        let current = std::mem::replace(acc, self.function.create_accumulator());
        *acc = self.function.merge(current, partial.1.clone());
    }
    fn get_result(&self, acc: &A::Acc) -> A::Out {
        self.function.get_result(acc)
    }
    fn merge(&self, a: A::Acc, b: A::Acc) -> A::Acc {
        self.function.merge(a, b)
    }
}

/// How the window operator keeps and emits one window's contents.
pub trait WindowLogic<K, T, W>: 'static {
    /// Cloned when panes shared by overlapping windows are combined.
    /// Kept in state, so checkpoints encode it.
    type Acc: Clone + StateValue;
    type Out: Data;
    fn create(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, value: &T);
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// Appends the window's results, with event time `ts`, to `out`.
    fn emit(&self, key: &K, window: &W, acc: &Self::Acc, ts: i64, out: &mut Vec<Rec<Self::Out>>);
}

/// Incremental aggregation; `finish` builds the output from key, window and result.
pub struct AggregateLogic<A, E> {
    pub function: A,
    pub finish: E,
}

impl<K, T, W, A, E, O> WindowLogic<K, T, W> for AggregateLogic<A, E>
where
    A: AggregateFunction<T>,
    E: Fn(&K, &W, A::Out) -> O + 'static,
    O: Data,
{
    type Acc = A::Acc;
    type Out = O;
    fn create(&self) -> A::Acc {
        self.function.create_accumulator()
    }
    #[inline]
    fn add(&self, acc: &mut A::Acc, value: &T) {
        self.function.add(value, acc)
    }
    fn merge(&self, a: A::Acc, b: A::Acc) -> A::Acc {
        self.function.merge(a, b)
    }
    fn emit(&self, key: &K, window: &W, acc: &A::Acc, ts: i64, out: &mut Vec<Rec<O>>) {
        out.push(Rec {
            ts,
            value: (self.finish)(key, window, self.function.get_result(acc)),
        });
    }
}

/// Reduction of the elements with a binary function.
pub struct ReduceLogic<T, R, E> {
    pub reduce: R,
    pub finish: E,
    pub _element: PhantomData<fn(T)>,
}

impl<K, T, W, R, E, O> WindowLogic<K, T, W> for ReduceLogic<T, R, E>
where
    T: ExchangeData,
    R: Fn(&T, &T) -> T + 'static,
    E: Fn(&K, &W, &T) -> O + 'static,
    O: Data,
{
    type Acc = StateOption<T>;
    type Out = O;
    fn create(&self) -> StateOption<T> {
        StateOption(None)
    }
    #[inline]
    fn add(&self, acc: &mut StateOption<T>, value: &T) {
        acc.0 = Some(match acc.0.take() {
            Some(current) => (self.reduce)(&current, value),
            None => value.clone(),
        });
    }
    fn merge(&self, a: StateOption<T>, b: StateOption<T>) -> StateOption<T> {
        StateOption(match (a.0, b.0) {
            (Some(a), Some(b)) => Some((self.reduce)(&a, &b)),
            (a, b) => a.or(b),
        })
    }
    fn emit(&self, key: &K, window: &W, acc: &StateOption<T>, ts: i64, out: &mut Vec<Rec<O>>) {
        if let Some(value) = &acc.0 {
            out.push(Rec {
                ts,
                value: (self.finish)(key, window, value),
            });
        }
    }
}

/// A function over all elements of the window (Flink's `ProcessWindowFunction`).
pub struct ProcessLogic<T, F, O> {
    pub function: F,
    pub _types: PhantomData<fn(T) -> O>,
}

impl<K, T, W, F, O> WindowLogic<K, T, W> for ProcessLogic<T, F, O>
where
    T: ExchangeData,
    F: Fn(&K, &W, &[T], &mut Vec<O>) + 'static,
    O: Data,
{
    type Acc = StateVec<T>;
    type Out = O;
    fn create(&self) -> StateVec<T> {
        StateVec(Vec::new())
    }
    #[inline]
    fn add(&self, acc: &mut StateVec<T>, value: &T) {
        acc.0.push(value.clone());
    }
    fn merge(&self, mut a: StateVec<T>, b: StateVec<T>) -> StateVec<T> {
        a.0.extend(b.0);
        a
    }
    fn emit(&self, key: &K, window: &W, acc: &StateVec<T>, ts: i64, out: &mut Vec<Rec<O>>) {
        let mut values = Vec::new();
        (self.function)(key, window, &acc.0, &mut values);
        out.extend(values.into_iter().map(|value| Rec { ts, value }));
    }
}
