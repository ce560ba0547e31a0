//! The LeanNodes reverse-proxy tier, built on Pingora: route matching on an `ArcSwap` snapshot, holding
//! requests while their flow wakes — a connection's first request parked in front of Pingora
//! (module `park`), later ones inside `request_filter` — released by the flow's `watch` state, never by
//! polling, and every row of the behaviour contract (cold-start header, warm-up page, JSON errors, gRPC
//! UNAVAILABLE, `max_held`, `ignore`, `disabled`, pass-through).
//!
//! This is the only crate that depends on pingora. It reads the control plane through in-memory
//! handles only ([`leannodes_control::FlowHandle`], [`leannodes_control::Controller::wake_flow`]).

pub mod access;
mod answer;
pub mod balance;
mod callout;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gate;
pub mod metrics;
mod park;
mod routes;
mod server;
mod service;
pub mod tls;

pub use answer::{Client, Reply, STATUS_PREFIX, json_reply, public_view};
pub use callout::{CHECK_TOKEN_HEADER, Callouts, serve_ext_authz};
pub use gate::{Inquiry, Verdict, callout_timeout};
pub use routes::{Endpoints, Route, RouteError, RouteTable, Upstream, resolve};
pub use server::{ProxyServer, ServerError, ServerOptions, ShutdownHandle};
pub use service::{LeanProxy, ProxyState, RequestCtx, StartError, UpstreamTimeouts};
