//! Response text: decoded from the charset its `Content-Type` declares
//! (encoding_rs, the WHATWG labels browsers accept), UTF-8 when none is declared.

use encoding_rs::{Encoding, UTF_8};

/// The `charset` parameter of a `Content-Type` value, unquoted.
fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `bytes` as text, or why they are not: an unknown charset, bytes invalid in
/// the declared one, or — with none declared — bytes that are not UTF-8 (with
/// the way to get them as bytes).
pub(crate) fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<String, String> {
    let declared = content_type.and_then(charset);
    let encoding = match declared {
        None => UTF_8,
        Some(label) => Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("response body has an unknown charset '{label}'"))?,
    };
    if encoding == UTF_8 {
        return String::from_utf8(bytes).map_err(|e| {
            let what = content_type.map_or(String::new(), |t| format!(", content type '{t}'"));
            let hint = if declared.is_some() {
                ""
            } else {
                "; for binary bodies use http_get_bytes or http_request_bytes"
            };
            format!(
                "response body is not valid UTF-8 ({} bytes, first invalid byte at {}{what}){hint}",
                e.as_bytes().len(),
                e.utf8_error().valid_up_to()
            )
        });
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| {
            format!(
                "response body is not valid {} ({} bytes)",
                encoding.name(),
                bytes.len()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(
            charset("text/plain; charset=ISO-8859-1"),
            Some("ISO-8859-1")
        );
        assert_eq!(charset("text/html;Charset=\"utf-8\""), Some("utf-8"));
        assert_eq!(charset("application/json"), None);
        let latin1 = vec![b'c', b'a', b'f', 0xE9];
        assert_eq!(
            decode(latin1.clone(), Some("text/plain; charset=ISO-8859-1")).unwrap(),
            "café"
        );
        let e = decode(latin1.clone(), Some("text/plain")).unwrap_err();
        assert!(e.contains("not valid UTF-8 (4 bytes, first invalid byte at 3, content type 'text/plain'); for binary"), "{e}");
        let e = decode(latin1, Some("text/plain; charset=utf-8")).unwrap_err();
        assert!(!e.contains("for binary"), "{e}");
        let e = decode(vec![b'a'], Some("text/plain; charset=klingon")).unwrap_err();
        assert_eq!(e, "response body has an unknown charset 'klingon'");
        let sjis = decode(vec![0x82, 0xA0], Some("text/plain; charset=Shift_JIS")).unwrap();
        assert_eq!(sjis, "あ");
        assert!(decode(vec![0x82], Some("text/plain; charset=shift_jis")).is_err());
    }
}
