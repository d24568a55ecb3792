//! The `engine.task` metadata custom section, built at compile time.
//!
//! [`task!`](crate::task) describes the task in a [`Meta`] constant; the
//! `const fn`s here turn it into the JSON bytes of a `#[link_section]` static
//! (`{"abi":1,"name":...,"params":[...]}`), escaping strings as JSON requires,
//! so nothing runs at instantiation time and the section is present even in a
//! stripped release build.

/// A task's self-description, as embedded in the `engine.task` section.
pub struct Meta<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    pub inputs: &'a [&'a str],
    pub outputs: &'a [&'a str],
    /// `None`: params not declared (the engine accepts any); `Some(&[])`: takes no params.
    pub params: Option<&'a [&'a str]>,
}

/// A byte sink that either counts (`out == None`) or writes.
struct Sink<'o, const N: usize> {
    out: Option<&'o mut [u8; N]>,
    len: usize,
}

impl<const N: usize> Sink<'_, N> {
    const fn byte(&mut self, b: u8) {
        if let Some(out) = &mut self.out {
            out[self.len] = b;
        }
        self.len += 1;
    }
    const fn raw(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            self.byte(b[i]);
            i += 1;
        }
    }
    /// A JSON string literal, with `"`, `\` and control characters escaped.
    const fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'"' || c == b'\\' {
                self.byte(b'\\');
                self.byte(c);
            } else if c < 0x20 {
                self.raw("\\u00");
                self.byte(HEX[(c >> 4) as usize]);
                self.byte(HEX[(c & 15) as usize]);
            } else {
                self.byte(c);
            }
            i += 1;
        }
        self.byte(b'"');
    }
    const fn array(&mut self, items: &[&str]) {
        self.byte(b'[');
        let mut i = 0;
        while i < items.len() {
            if i > 0 {
                self.byte(b',');
            }
            self.string(items[i]);
            i += 1;
        }
        self.byte(b']');
    }
    const fn meta(&mut self, m: &Meta<'_>) {
        self.raw("{\"abi\":1,\"name\":");
        self.string(m.name);
        self.raw(",\"version\":");
        self.string(m.version);
        self.raw(",\"description\":");
        self.string(m.description);
        self.raw(",\"inputs\":");
        self.array(m.inputs);
        self.raw(",\"outputs\":");
        self.array(m.outputs);
        if let Some(params) = m.params {
            self.raw(",\"params\":");
            self.array(params);
        }
        self.byte(b'}');
    }
}

/// Length in bytes of the JSON encoding of `m`.
pub const fn json_len(m: &Meta<'_>) -> usize {
    let mut s = Sink::<0> { out: None, len: 0 };
    s.meta(m);
    s.len
}

/// The JSON encoding of `m`; `N` must be [`json_len`]`(m)`.
pub const fn json_bytes<const N: usize>(m: &Meta<'_>) -> [u8; N] {
    let mut out = [0u8; N];
    let mut s = Sink { out: Some(&mut out), len: 0 };
    s.meta(m);
    assert!(s.len == N, "json_bytes: N must equal json_len");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Meta<'static> = Meta {
        name: "wc",
        version: "1.0",
        description: "say \"hi\"\\\n",
        inputs: &["text"],
        outputs: &["out", "b"],
        params: Some(&[]),
    };

    #[test]
    fn encodes_and_escapes() {
        const N: usize = json_len(&M);
        let bytes = json_bytes::<N>(&M);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"abi":1,"name":"wc","version":"1.0","description":"say \"hi\"\\\u000a","inputs":["text"],"outputs":["out","b"],"params":[]}"#
        );
    }

    #[test]
    fn omits_undeclared_params() {
        const M2: Meta<'static> = Meta { params: None, inputs: &[], description: "", ..M };
        const N: usize = json_len(&M2);
        let bytes = json_bytes::<N>(&M2);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"abi":1,"name":"wc","version":"1.0","description":"","inputs":[],"outputs":["out","b"]}"#
        );
    }
}
