//! The wire contract of Triage: code generated from `proto/triage/v1` and the descriptor set
//! that gRPC reflection serves.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `triage.v1`: every message and service of the contract.
pub mod v1 {
    tonic::include_proto!("triage.v1");
}

/// Encoded `FileDescriptorSet` of every Triage proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/triage_descriptor.bin"));

pub use v1 as pb;
