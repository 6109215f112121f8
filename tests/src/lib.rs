//! Support shared by the black-box test binaries: the moto server harness that gives the AWS
//! backend a real AWS-API-compatible endpoint on loopback.

pub mod lambda;
pub mod moto;
