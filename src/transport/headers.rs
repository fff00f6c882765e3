//! A response's headers as a row keeps them: copied out of the response at
//! once, into one string.
//!
//! hyper's header values are slices of the connection's read buffer: a kept
//! `HeaderMap` pins that buffer, so the connection must allocate a new one for
//! the answers that follow instead of reusing its own. A row's headers wait
//! for their chunk to be built, so they are copied into a string of their own
//! as soon as the answer arrives, and the response is dropped.

use reqwest::header::{HeaderMap, HeaderValue};

/// Response headers: names lower-cased, a repeated name's values joined with
/// `", "` (as HTTP allows), in the order they arrived; values that are not
/// UTF-8 are decoded leniently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Every name and its value, back to back.
    text: String,
    /// Where each name and its value end in `text`: read without a search.
    ends: Vec<(u32, u32)>,
}

/// An offset into the headers' text (hyper caps a response's head far below
/// 4 GiB).
fn offset(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

/// Appends `value`: as it is when it is visible ASCII (nearly always, and
/// checked without decoding), else decoded leniently.
fn push_value(text: &mut String, value: &HeaderValue) {
    match value.to_str() {
        Ok(ascii) => text.push_str(ascii),
        Err(_) => text.push_str(&String::from_utf8_lossy(value.as_bytes())),
    }
}

impl Headers {
    /// The headers of `map`.
    pub fn of(map: &HeaderMap) -> Self {
        let size = map
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let mut text = String::with_capacity(size);
        let mut ends = Vec::with_capacity(map.keys_len());
        // the values of a name come one after another: one pass, no look-ups
        let mut entries = map.iter().peekable();
        while let Some((name, value)) = entries.next() {
            text.push_str(name.as_str());
            let name_end = offset(&text);
            push_value(&mut text, value);
            while let Some((_, value)) = entries.next_if(|(next, _)| *next == name) {
                text.push_str(", ");
                push_value(&mut text, value);
            }
            ends.push((name_end, offset(&text)));
        }
        Self { text, ends }
    }

    /// Headers of `(name, value)` pairs as [`Self::iter`] gives them.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = Self::default();
        for (name, value) in pairs {
            out.text.push_str(name);
            let name_end = offset(&out.text);
            out.text.push_str(value);
            out.ends.push((name_end, offset(&out.text)));
        }
        out
    }

    /// The `(name, value)` pairs, one per name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let pair = (&self.text[start..name_end], &self.text[name_end..value_end]);
            start = value_end;
            pair
        })
    }

    /// The value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find_map(|(n, v)| (n == name).then_some(v))
    }

    /// Their size in bytes.
    pub fn size(&self) -> usize {
        self.text.len() + self.ends.len() * std::mem::size_of::<(u32, u32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lower_case_repeats_joined_and_non_utf8_decoded() {
        let mut map = HeaderMap::new();
        map.append("Content-Type", HeaderValue::from_static("text/plain"));
        map.append("Set-Cookie", HeaderValue::from_static("a=1"));
        map.append("X-Odd", HeaderValue::from_bytes(b"caf\xe9: ok").unwrap());
        map.append(
            "X-Utf8",
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        let headers = Headers::of(&map);
        let pairs: Vec<_> = headers.iter().collect();
        assert_eq!(
            pairs,
            [
                ("content-type", "text/plain"),
                ("set-cookie", "a=1, b=2"),
                ("x-odd", "caf\u{fffd}: ok"),
                ("x-utf8", "caf\u{e9}"),
            ]
        );
        assert_eq!(headers.get("set-cookie"), Some("a=1, b=2"));
        assert_eq!(headers.get("x-missing"), None);
        assert_eq!(Headers::of(&HeaderMap::new()).size(), 0);
        assert_eq!(headers.size(), headers.text.len() + 4 * 8);
    }
}
