//! 24-hex identifiers shaped like MongoDB ObjectIds: 4 bytes of seconds, 5 random, 3 counter.

use rand::RngCore;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl ObjectId {
    pub fn new() -> Self {
        let secs = time::OffsetDateTime::now_utc().unix_timestamp() as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut bytes[4..9]);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        ObjectId(bytes)
    }

    /// Accepts exactly 24 lowercase hex characters, as Atlas's `^([a-f0-9]{24})$`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(ObjectId(bytes))
    }

    pub fn is_valid(s: &str) -> bool {
        Self::parse(s).is_some()
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_unique() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert_ne!(a, b);
        assert_eq!(ObjectId::parse(&a.to_string()), Some(a));
    }

    #[test]
    fn rejects_bad_shapes() {
        for bad in ["", "abc", "5f1b2c3d4e5f6a7b8c9d0e1", "5F1B2C3D4E5F6A7B8C9D0E1F", "5f1b2c3d4e5f6a7b8c9d0e1g"] {
            assert!(ObjectId::parse(bad).is_none(), "{bad}");
        }
        assert!(ObjectId::parse("5f1b2c3d4e5f6a7b8c9d0e1f").is_some());
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::parse(&s).ok_or_else(|| serde::de::Error::custom("expected 24 lowercase hex characters"))
    }
}
