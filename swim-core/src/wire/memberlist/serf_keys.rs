//! serf's key management on the wire (`serf/keymanager.go` and
//! `serf/internal_query.go` at serf 0.9.4): `serf keys` asks every member
//! through an internal query (`_serf_install-key`, `_serf_use-key`,
//! `_serf_remove-key`, `_serf_list-keys`) whose payload is a key request,
//! and every member answers with a key response saying whether it could,
//! and (listing) which keys it holds.

use alloc::vec::Vec;

use super::error::{EncodeError, Error};
use super::msgpack::read::Reader;
use super::msgpack::write;
use super::serf::SerfType;

/// The prefix of serf's internal queries: serf answers them itself and
/// never hands them to the application.
pub(crate) const INTERNAL_PREFIX: &str = "_serf_";

/// The operation a key query asks for, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyQuery {
    /// `_serf_install-key`.
    Install,
    /// `_serf_use-key`.
    Use,
    /// `_serf_remove-key`.
    Remove,
    /// `_serf_list-keys`.
    List,
}

impl KeyQuery {
    /// Every key query.
    pub(crate) const ALL: [KeyQuery; 4] = [KeyQuery::Install, KeyQuery::Use, KeyQuery::Remove, KeyQuery::List];

    /// The query's name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyQuery::Install => "_serf_install-key",
            KeyQuery::Use => "_serf_use-key",
            KeyQuery::Remove => "_serf_remove-key",
            KeyQuery::List => "_serf_list-keys",
        }
    }

    /// The key query of this name, if it is one.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == name)
    }
}

/// A key request's key (`keyRequest`: type byte, then `{Key []byte}`).
pub(crate) fn decode_request(payload: &[u8]) -> Result<&[u8], Error> {
    let (&t, body) = payload.split_first().ok_or(Error::Truncated)?;
    if t != SerfType::KeyRequest as u8 {
        return Err(Error::UnexpectedType(t));
    }
    let mut key: &[u8] = &[];
    Reader::new(body).read_struct(|name, r| {
        if name != b"Key" {
            return Ok(false);
        }
        key = r.bytes_or_empty()?;
        Ok(true)
    })?;
    Ok(key)
}

/// Appends a key request for `key`, as `serf keys` sends it.
pub(crate) fn encode_request(key: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write::atomically(out, |out| {
        out.push(SerfType::KeyRequest as u8);
        write::map_header(out, 1);
        write::key(out, "Key");
        write::raw(out, key)
    })
}

/// A member's answer to a key query (`nodeKeyResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyResponse<'a> {
    /// `Result`: whether the member did as asked.
    pub(crate) result: bool,
    /// `Message`: why not, or a warning.
    pub(crate) message: &'a str,
    /// `Keys`: listing, the member's keys in base64 (standard alphabet).
    pub(crate) keys: Vec<&'a str>,
    /// `PrimaryKey`: listing, its primary key in base64.
    pub(crate) primary_key: &'a str,
}

/// Past this many keys an answer is no member's (serf bounds its keyring
/// by what a query response may carry): refused rather than read on.
const MAX_KEYS: usize = 1024;

impl<'a> KeyResponse<'a> {
    /// Reads a key response: type byte, then the struct.
    pub(crate) fn decode(payload: &'a [u8]) -> Result<Self, Error> {
        let (&t, body) = payload.split_first().ok_or(Error::Truncated)?;
        if t != SerfType::KeyResponse as u8 {
            return Err(Error::UnexpectedType(t));
        }
        let mut m = KeyResponse::default();
        Reader::new(body).read_struct(|name, r| {
            match name {
                b"Result" => m.result = r.boolean()?,
                b"Message" => m.message = r.str()?,
                b"PrimaryKey" => m.primary_key = r.str()?,
                b"Keys" => {
                    let n = r.array_len()?.unwrap_or(0);
                    if n > MAX_KEYS {
                        return Err(Error::Oversized);
                    }
                    m.keys.clear();
                    for _ in 0..n {
                        m.keys.push(r.str()?);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }

    /// Appends the answer as serf writes it: type byte, then the struct
    /// with its fields sorted by name, no keys as `nil`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write::atomically(out, |out| {
            out.push(SerfType::KeyResponse as u8);
            write::map_header(out, 4);
            write::key(out, "Keys");
            if self.keys.is_empty() {
                write::nil(out);
            } else {
                write::array_header(out, self.keys.len());
                for k in &self.keys {
                    write::raw(out, k.as_bytes())?;
                }
            }
            write::key(out, "Message");
            write::raw(out, self.message.as_bytes())?;
            write::key(out, "PrimaryKey");
            write::raw(out, self.primary_key.as_bytes())?;
            write::key(out, "Result");
            write::boolean(out, self.result);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_request_is_written_as_serf_writes_it_and_read_back() {
        let key = [7u8; 32];
        let mut out = Vec::new();
        encode_request(&key, &mut out).unwrap();
        // 32 bytes are past a fixstr: the old spec's raw16.
        let mut want = alloc::vec![7, 0x81, 0xa3, b'K', b'e', b'y', 0xda, 0, 32];
        want.extend_from_slice(&key);
        assert_eq!(out, want);
        assert_eq!(decode_request(&out), Ok(&key[..]));
        // serf may write the key as bin too; junk is refused.
        assert_eq!(decode_request(&[7, 0x81, 0xa3, b'K', b'e', b'y', 0xc4, 1, 9]), Ok(&[9u8][..]));
        assert_eq!(decode_request(&[8, 0x80]), Err(Error::UnexpectedType(8)));
        assert_eq!(decode_request(&[7, 0x81, 0xa3, b'K', b'e', b'y', 0xa5, 1]), Err(Error::Truncated));
        assert_eq!(decode_request(&[]), Err(Error::Truncated));
    }

    #[test]
    fn a_key_response_is_written_as_serf_writes_it_and_read_back() {
        // What a serf agent without a keyring answers.
        let refused =
            KeyResponse { message: "No keyring to modify (encryption not enabled)", ..KeyResponse::default() };
        let mut out = Vec::new();
        refused.encode(&mut out).unwrap();
        let mut want = alloc::vec![8, 0x84, 0xa4, b'K', b'e', b'y', b's', 0xc0, 0xa7];
        want.extend_from_slice(b"Message");
        want.extend_from_slice(&[0xda, 0, 45]);
        want.extend_from_slice(refused.message.as_bytes());
        want.push(0xaa);
        want.extend_from_slice(b"PrimaryKey");
        want.extend_from_slice(&[0xa0, 0xa6]);
        want.extend_from_slice(b"Result");
        want.push(0xc2);
        assert_eq!(out, want);
        assert_eq!(KeyResponse::decode(&out), Ok(refused));

        let listed = KeyResponse {
            result: true,
            message: "",
            keys: alloc::vec!["a2V5MQ==", "a2V5Mg=="],
            primary_key: "a2V5MQ==",
        };
        let mut out = Vec::new();
        listed.encode(&mut out).unwrap();
        assert_eq!(KeyResponse::decode(&out), Ok(listed));
        assert_eq!(KeyResponse::decode(&[7, 0x80]), Err(Error::UnexpectedType(7)));
        assert_eq!(
            KeyResponse::decode(&[8, 0x81, 0xa4, b'K', b'e', b'y', b's', 0xdd, 0, 1, 0, 0]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn key_queries_are_known_by_name() {
        for q in KeyQuery::ALL {
            assert_eq!(KeyQuery::from_name(q.name()), Some(q));
            assert!(q.name().starts_with(INTERNAL_PREFIX));
        }
        assert_eq!(KeyQuery::from_name("_serf_ping"), None);
    }
}
