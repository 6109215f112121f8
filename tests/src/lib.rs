//! Support shared by the black-box test binaries: the moto server harness that gives the AWS
//! backend a real AWS-API-compatible endpoint on loopback, real `giftify` processes for
//! the crash and soak tests, and the seeded fault simulation ([`sim`]).

pub mod bench;
pub mod lambda;
pub mod moto;
pub mod process;
pub mod sim;
