//! Key material atrest holds itself. Plaintext keys live only in zeroizing memory.

pub mod aws;
pub mod ec2;
pub mod key_check;
pub mod sealer;

pub use sealer::{SealError, Sealer};
