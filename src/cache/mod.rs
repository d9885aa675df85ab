//! The on-disk credential cache: the store (files, locks, atomic writes) and the policy
//! (when to serve, refresh or wait) kept apart.

pub mod policy;
pub mod store;

pub use policy::{Outcome, RefreshWindow, Settings, Wanted, lookup, obtain};
pub use store::{Cache, CacheError, Entry, decode};
