//! URL parsing that reuses the last origin's parse.
//!
//! The rows of one invocation mostly call one service, and the host is the
//! costly part of a parse (IDNA processing: about half of it). A URL whose
//! `scheme://authority` is, byte for byte, the last parsed one's is read as a
//! path-absolute reference against that origin: the WHATWG parser takes scheme,
//! credentials, host and port from the base for such a reference and parses the
//! path, query and fragment exactly as in a full parse. Whatever the shortcut
//! could read differently takes the full parse: spaces and controls (the parser
//! trims or strips them), a second slash after the authority (a reference
//! naming another host), backslashes, a scheme not written `http://` or
//! `https://`. Debug builds check every shortcut against a full parse.

use parking_lot::Mutex;
use reqwest::Url;

use super::request::parse_url;

/// Parses and checks URLs like [`parse_url`], reusing the last origin's parse.
#[derive(Debug, Default)]
pub(crate) struct UrlParser {
    /// The last origin: its text (`scheme://authority`) and its URL (path `/`).
    last: Mutex<Option<(String, Url)>>,
}

impl UrlParser {
    /// The same result as [`parse_url`]`(raw)`.
    pub(crate) fn parse(&self, raw: &str) -> Result<Url, String> {
        let Some((origin, rest)) = split(raw) else {
            return parse_url(raw);
        };
        let mut last = self.last.lock();
        if let Some((text, base)) = last.as_ref()
            && text == origin
            && let Ok(url) = base.join(rest)
        {
            debug_assert_eq!(Url::parse(raw).as_ref(), Ok(&url), "shortcut for {raw}");
            return Ok(url);
        }
        let url = parse_url(raw)?;
        let mut base = url.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        *last = Some((origin.to_string(), base));
        Ok(url)
    }
}

/// `raw` cut after its authority, when the shortcut may read it: `http://` or
/// `https://`, an authority, then nothing, a query, a fragment or a path that
/// does not start with two slashes; no spaces, controls or backslashes.
fn split(raw: &str) -> Option<(&str, &str)> {
    let start = if raw.starts_with("https://") {
        8
    } else if raw.starts_with("http://") {
        7
    } else {
        return None;
    };
    let bytes = raw.as_bytes();
    if bytes.iter().any(|&b| b <= b' ' || b == b'\\' || b == 0x7f) {
        return None;
    }
    let end = bytes[start..]
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(raw.len(), |i| start + i);
    if end == start || bytes[end..].starts_with(b"//") {
        return None;
    }
    Some(raw.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortcut_applies_to_plain_urls_only() {
        assert_eq!(split("http://h:1/x?id=2"), Some(("http://h:1", "/x?id=2")));
        assert_eq!(split("https://h?q"), Some(("https://h", "?q")));
        assert_eq!(split("http://h"), Some(("http://h", "")));
        for raw in [
            "http://h//other/x",
            "http:///h/x",
            "http://h/\\x",
            "http://h/\tx",
            "http://h/ x",
            " http://h/x",
            "HTTP://h/x",
            "ftp://h/x",
            "http://",
        ] {
            assert_eq!(split(raw), None, "{raw}");
        }
    }

    /// Every URL, parsed in this order by one parser (so most take the
    /// shortcut from the one before), gives what a full parse gives.
    #[test]
    fn every_url_parses_as_a_full_parse_does() {
        let urls = [
            "http://api.example/v1/x?id=1",
            "http://api.example/v1/y?id=2&b=%20c",
            "http://api.example/a/../b/./c?x#frag",
            "http://api.example/ü/ä?é=1",
            "http://api.example/%zz?%zz",
            "http://api.example?only=query",
            "http://api.example#only-fragment",
            "http://api.example",
            "http://api.example//evil.example/x",
            "http://api.example/\\\\evil.example/x",
            "http://api.example/x\ty",
            "http://API.example/upper",
            "http://api.example:80/default-port",
            "http://api.example:80/default-port-again",
            "http://user:pw@api.example/p",
            "http://user:pw@api.example/q?r",
            "http://[::1]:8080/v6",
            "http://[::1]:8080/v6?again",
            "https://api.example:443/tls",
            "https://api.example:443/tls/2",
            "http://127.0.0.1:9/x",
            "http://127.0.0.1:9/y",
            "http://api.example:99999/bad-port",
            "http://api.example:99999/bad-port-again",
            "ftp://api.example/x",
            "not a url",
            "",
        ];
        let parser = UrlParser::default();
        for raw in urls {
            let full = parse_url(raw).map(String::from);
            assert_eq!(parser.parse(raw).map(String::from), full, "{raw}");
        }
    }
}
