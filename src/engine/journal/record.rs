//! What one entry holds, and a small length-prefixed encoding that clients
//! use for their answers.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_field_names)]
pub struct Recorded {
    /// The function that made the call.
    pub function: String,
    /// The answer's status as the function reports it (an HTTP status; 0 for
    /// a function without one).
    pub status: u16,
    /// When it was recorded, in ms since the Unix epoch.
    pub recorded_at_ms: u64,
    /// The answer, in the function's own encoding.
    pub answer: Bytes,
}

impl Recorded {
    /// The entry of a final answer of `function` with `status` and `answer`,
    /// recorded now.
    pub fn new(function: &str, status: u16, answer: Bytes) -> Self {
        Self {
            function: function.to_string(),
            status,
            recorded_at_ms: super::now_ms(),
            answer,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.u8(VERSION);
        out.u64(self.recorded_at_ms);
        out.u16(self.status);
        out.str(&self.function);
        let mut bytes = out.finish().to_vec();
        bytes.extend_from_slice(&self.answer);
        bytes
    }

    /// The entry in `value` (its answer a slice of it, not a copy), or `None`
    /// when it is not one this version wrote.
    pub(crate) fn decode(value: Vec<u8>) -> Option<Self> {
        let mut r = Reader::new(Bytes::from(value));
        if r.u8()? != VERSION {
            return None;
        }
        let recorded_at_ms = r.u64()?;
        let status = r.u16()?;
        let function = r.str()?;
        Some(Self {
            function,
            status,
            recorded_at_ms,
            answer: r.rest(),
        })
    }

    /// When an entry in `value` was recorded, without decoding the rest.
    pub(crate) fn recorded_at(value: &[u8]) -> Option<u64> {
        (value.first() == Some(&VERSION) && value.len() >= 9)
            .then(|| u64::from_le_bytes(value[1..9].try_into().expect("8 bytes")))
    }
}

/// Writes numbers and length-prefixed byte strings.
#[derive(Default)]
pub struct Writer(BytesMut);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.put_u8(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.put_u16_le(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.put_u32_le(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.0.put_u64_le(v);
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.0
            .put_u32_le(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.put_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub fn finish(self) -> Bytes {
        self.0.freeze()
    }
}

/// Reads what a [`Writer`] wrote; `None` when the input is too short.
pub struct Reader(Bytes);

impl Reader {
    pub fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }
    pub fn u8(&mut self) -> Option<u8> {
        (self.0.remaining() >= 1).then(|| self.0.get_u8())
    }
    pub fn u16(&mut self) -> Option<u16> {
        (self.0.remaining() >= 2).then(|| self.0.get_u16_le())
    }
    pub fn u32(&mut self) -> Option<u32> {
        (self.0.remaining() >= 4).then(|| self.0.get_u32_le())
    }
    pub fn u64(&mut self) -> Option<u64> {
        (self.0.remaining() >= 8).then(|| self.0.get_u64_le())
    }
    pub fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        (self.0.remaining() >= n).then(|| self.0.split_to(n))
    }
    pub fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    pub fn rest(self) -> Bytes {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_a_damaged_one_does_not() {
        let r = Recorded {
            function: "http_post".into(),
            status: 201,
            recorded_at_ms: 1_700_000_000_000,
            answer: Bytes::from_static(b"\x00\xffbody"),
        };
        let bytes = r.encode();
        assert_eq!(Recorded::recorded_at(&bytes), Some(1_700_000_000_000));
        assert_eq!(Recorded::decode(bytes[..5].to_vec()), None);
        assert_eq!(Recorded::decode(bytes), Some(r));
        assert_eq!(Recorded::decode(b"\x09rest".to_vec()), None);
    }
}
