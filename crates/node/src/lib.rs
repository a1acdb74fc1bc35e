//! hallmark-node: the HTTP services for every role and the signed client they talk with.
//!
//! - [`ledger_service`]: the devnet ledger over HTTP; [`http_ledger::HttpLedger`] is the
//!   [`hallmark_ledger::Ledger`] every other role uses to reach it.
//! - [`replicated_ledger`]: the ledger role as one Malachite BFT replica, its view applied
//!   from decided blocks.
//! - [`coordinator`]: publishes signed sat rounds (id, seed, nonce, parameters, deadline).
//! - [`validator`]: the validator's state and routes; [`rounds`]: its round pipeline for every
//!   round lane (intake, report, gossip, decide).
//! - [`worker`]: solves each round and submits signed witnesses to every validator.
//! - [`auth`]: request signing (method, path without query, body digest, timestamp).
//! - [`log_routes`]: the read side of a node's transparency log (checkpoints, leaves, proofs).
//! - [`jobs`]: jobs of every job lane — the coordinator's board, the worker's executor loop,
//!   the validator's voter.
//! - [`lanes`]: the lane registry, the one module that names lane crates.
//! - [`clients`]: the gate in front of client requests (bonded stake, rate, plausible times).
//! - [`dashboard`]: the coordinator's live page (`/`, embedded assets) and `/v1/dashboard`.
//! - [`consents`]: trace consents on the coordinator (workers' signed statements of which
//!   trace fields public exports may show).
//! - [`compute`]: secure-compute intake on the coordinator (offers, evidence, listings, claims).
//! - [`faults`]: fault injection (devnet, tests) as one configuration value.
//! - [`error`]: typed errors of background work and settings, each with a code.
//! - [`api`]: wire errors and body parsing shared by every service.
//! - [`metrics`]: each node's Prometheus registry and `GET /metrics`.
//! - [`server`]: the connection loop every role serves on (timeouts, a connection cap).

pub mod api;
pub mod auth;
pub mod builds;
pub mod client;
pub mod clients;
pub mod compute;
pub mod config;
pub mod consents;
pub mod coordinator;
pub mod dashboard;
pub mod error;
pub mod faults;
pub mod http_ledger;
pub mod jobs;
pub mod lanes;
pub mod ledger_service;
pub mod log_routes;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod registration;
pub mod replicated_ledger;
pub mod rounds;
pub mod run;
pub mod runs;
pub mod server;
pub mod traces;
pub mod validator;
pub mod worker;

pub use client::{ClientError, NodeClient};
pub use config::{NodeConfig, RoleName};
pub use lanes::LaneRegistry;
pub use run::{run_node, run_node_with, serve, RunningNode};
