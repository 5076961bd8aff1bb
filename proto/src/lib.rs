//! The `sre.v1` wire contract of the mesh: messages, tonic clients and servers for the Planner, Policy,
//! Scanner, Validator and PullRequests services, and the encoded file descriptor set that every server
//! registers with gRPC reflection so `grpcurl` works without the .proto files.

#![allow(clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("sre.v1");
}

/// Encoded `FileDescriptorSet` of every sre.v1 file, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sre_descriptor.bin"));

pub use v1::*;
